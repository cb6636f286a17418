// Package volumetric owns one idea: a per-client leaky bucket, kept in a
// bounded and sharded LRU, that refuses a client's spikes before they cost
// WAF time or a Redis round trip, and whose memory an address-spraying flood
// cannot grow or use to reset a real abuser.
//
// # Algorithm
//
// Each client key holds one number: its theoretical arrival time (TAT), in
// integer nanoseconds. This is the generic cell rate algorithm (GCRA), the
// "leaky bucket as a meter": with emission interval T = period/count and
// tolerance τ = (burst−1)×T, a request at time t conforms when
//
//	max(TAT, t) − τ ≤ t
//
// and a conforming request moves TAT to max(TAT, t) + T. A refused request
// changes nothing, so hammering a closed bucket does not push its reopening
// further away. TAT − t is the bucket's level expressed as time: the client's
// debt. When TAT ≤ t the bucket is empty and the entry says nothing that an
// absent entry would not say: it is "drained". n requests at once conform
// when max(TAT, t) + (n−1)×T − τ ≤ t, all or none.
//
// # Burst
//
// burst is the number of requests a client that has been idle long enough
// may send at the same instant: from a drained bucket exactly burst
// requests at one instant conform and the next is refused, and n above
// burst at once never conforms. burst 1 (τ = 0) is strict pacing; burst 0
// in the config means the rate's count ("50/s": 50 at once). This is the
// definition every limiter of the project shares (the quota stage's), and
// the bucket size of golang.org/x/time/rate, go-redis/redis_rate and
// Traefik.
//
// # Memory
//
// Clients are split over shards, each a hashicorp/golang-lru/v2 simplelru
// that orders them for eviction and a map of their TATs, under the shard's
// own mutex; both know a client by a seeded 64-bit hash of its key. A shard
// never grows past its share of max_clients. When a new client needs room in
// a full shard, the shard looks at its few least recently used entries and
// evicts the first one that is drained, which loses nothing. Only when none
// of them is drained does it evict one that still owes ("forced"): the one
// closest to drained, because forgetting a client hands it back its debt.
// Entries the look passes over still hold debt, so they are moved
// to the front: a second chance, which is what keeps an abuser's bucket alive
// through a flood of one-shot addresses.
//
// A known client moves to the front when its bucket held debt before its
// request, whether the request conforms or not: it is sending faster than its
// rate. A client whose bucket had drained stays where it is: its entry was
// worth nothing, and the request leaves it at most n intervals of debt. If it
// reaches the tail still owing, the look above gives it its second chance;
// only a forced eviction can forget it, and then it gains back at most those n
// requests. This spares the common decision, a client well within its rate,
// the list surgery of a move (three other entries' cache lines).
//
// # Rationale
//
// A leaky bucket rather than windows: one timestamp per client, exact at any
// instant (no window edges to double up on), O(1), and its refusal comes with
// an exact Retry-After. Drained-first eviction because under an address
// spray almost every entry is a one-shot address whose bucket empties within
// one interval: evicting those costs nothing, while evicting purely by
// recency would let the spray push a paced abuser out of the cache and hand
// it a fresh burst every time.
package volumetric
