package volumetric

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/edgeguard/edgeguard/filters"
)

// ErrConfig is wrapped by NewLimiter and New when the config does not validate.
var ErrConfig = errors.New("volumetric: bad config")

// Never is the retryAfter of a request that can never conform: AllowNAt
// with n above burst.
const Never = time.Duration(math.MaxInt64)

// scanDepth is how many least recently used entries a full shard inspects
// for a drained one before it evicts by recency alone. Small, because it
// runs under the shard lock on every new client of a full shard; 8 is
// plenty when most entries are one-shot addresses, and bounds the cost
// when none are.
const scanDepth = 8

// Limiter is a set of per-client leaky buckets (GCRA) with one rate and
// burst, in a bounded LRU split over shards. See the package documentation
// for the algorithm, the eviction order and when an entry moves to the
// front of its LRU.
//
// Time is an argument: AllowAt takes the request's arrival time and never
// reads the clock, so a test can walk fixed instants. A Limiter is safe for
// concurrent use; calls on keys in different shards do not contend. It
// starts no goroutines and needs no Close.
type Limiter struct {
	gcra    filters.GCRA // in nanoseconds; Burst resolved, at least 1
	maxKeys int

	seed   maphash.Seed // secret: see hash
	shards []shard
	scan   int // scanDepth; tests set 0 to get plain LRU eviction
}

// shard is one independently locked LRU and its clients' buckets. The
// padding keeps two shards' hot words off one cache line.
//
// Both know a client by its key's hash (Limiter.hash), which halves the
// LRU's list entry and map slot next to a 16-byte key. A decision reads and
// writes only tats, a map of plain integers; the LRU is touched only when a
// client is added, evicted or moved to the front. Reaching the bucket
// through the LRU would cost a map lookup, its list entry and the bucket
// behind it: three cache misses, where a map of integers costs one or two.
type shard struct {
	mu sync.Mutex
	// lru orders the shard's clients from least to most recently moved to
	// the front; it holds no values.
	lru *simplelru.LRU[uint64, struct{}]
	// tats is each client's theoretical arrival time, Unix ns.
	tats    map[uint64]int64
	cap     int
	drained uint64 // evictions of drained entries
	forced  uint64 // evictions of entries that still held debt
	denied  uint64
	// latest is the latest arrival time (Unix ns) the shard has decided: the
	// limiter's own "now", which absorb uses to tell drained buckets.
	latest int64
	// churn counts evictions since the maps were last rebuilt (see rebuild).
	churn int
	_     [64]byte
}

// Stats is a snapshot of a Limiter's size and counters.
type Stats struct {
	// Clients is the number of buckets held now.
	Clients int
	// EvictedDrained and EvictedForced count evictions of empty buckets
	// (free) and of buckets that still held debt (a client forgotten early).
	EvictedDrained, EvictedForced uint64
	// Denied counts refused requests.
	Denied uint64
}

// NewLimiter builds a Limiter from cfg; Mode is ignored.
func NewLimiter(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Rate.IsZero() {
		return nil, fmt.Errorf("%w: rate: is required", ErrConfig)
	}
	cfg = cfg.withDefaults() // resolves Burst: at least 1 for a set rate
	l := &Limiter{
		gcra:    filters.Limit{Rate: cfg.Rate, Burst: int64(cfg.Burst)}.GCRA(time.Nanosecond),
		maxKeys: cfg.MaxClients,
		seed:    maphash.MakeSeed(),
		shards:  make([]shard, cfg.Shards),
		scan:    scanDepth,
	}
	// Spread the remainder so the shard caps add up to exactly MaxClients.
	per, extra := cfg.MaxClients/cfg.Shards, cfg.MaxClients%cfg.Shards
	for i := range l.shards {
		s := &l.shards[i]
		s.cap = per
		if i < extra {
			s.cap++
		}
		s.latest = math.MinInt64 // nothing decided yet
		// The LRU's own cap is one above ours: makeRoom evicts first, so
		// simplelru's blind oldest-first eviction never fires.
		lru, err := simplelru.NewLRU[uint64, struct{}](s.cap+1, nil)
		if err != nil {
			return nil, fmt.Errorf("volumetric: building shard %d with %d slots: %w", i, s.cap, err)
		}
		s.lru = lru
		s.tats = make(map[uint64]int64)
	}
	return l, nil
}

// AllowAt reports whether one request from key arriving at now conforms,
// and records it if so. When it does not, retryAfter is the exact time
// until it would.
func (l *Limiter) AllowAt(now time.Time, key filters.Key) (ok bool, retryAfter time.Duration) {
	return l.AllowNAt(now, key, 1)
}

// AllowNAt is AllowAt for n requests at once, all or nothing. n ≤ 0 always
// conforms and records nothing. n above burst can never conform: it is
// refused with retryAfter Never.
func (l *Limiter) AllowNAt(now time.Time, key filters.Key, n int) (ok bool, retryAfter time.Duration) {
	if n <= 0 {
		return true, 0
	}
	t := unixNanos(now)
	h := l.hash(key)
	s := l.shardAt(h)
	if int64(n) > l.gcra.Burst {
		s.mu.Lock()
		s.denied++
		s.mu.Unlock()
		return false, Never
	}
	// n ≤ burst by the check above, and burst×T is bounded by Validate: a
	// stored TAT is at most a clamped t plus burst×T, so the GCRA's sums
	// (a TAT plus n×T) cannot overflow.
	s.mu.Lock()
	s.latest = max(s.latest, t)
	tat, found := s.tats[h]
	if !found {
		tat = t
	}
	next, wait := l.gcra.Take(tat, t, int64(n))
	if wait > 0 {
		// Found (an unseen key always conforms) and in debt: keep it
		// away from the tail, as for any client in debt.
		s.denied++
		s.lru.Get(h)
		s.mu.Unlock()
		return false, time.Duration(wait)
	}
	switch {
	case !found:
		s.makeRoom(t, l.scan)
		s.lru.Add(h, struct{}{})
	case tat > t:
		// The bucket held debt before this request: the client is sending
		// faster than its rate and must not be forgotten. One whose
		// bucket had drained stays where it is (see the package doc).
		s.lru.Get(h)
	}
	s.tats[h] = next
	s.mu.Unlock()
	return true, 0
}

// makeRoom frees a place for a new entry in s if s is full: it evicts the
// first drained entry among the scan least recently used, else, of those
// scanned, the one closest to drained (the least recently used of equals).
// The caller holds s.mu.
func (s *shard) makeRoom(t int64, scan int) {
	n := s.lru.Len()
	if n < s.cap {
		return
	}
	victim, _, ok := s.lru.GetOldest()
	if !ok { // cap 0 cannot happen: NewLimiter gives every shard a slot
		return
	}
	least := s.tats[victim]
	for i := 0; i < scan && i < n; i++ {
		h, _, _ := s.lru.GetOldest()
		tat := s.tats[h]
		if tat <= t {
			s.lru.Remove(h)
			delete(s.tats, h)
			s.drained++
			s.noteEviction()
			return
		}
		// Forgetting a client hands it back its debt, so when every entry
		// looked at owes, the smallest debt goes: a clump of fresh one-shot
		// addresses must not push out an abuser that owes seconds.
		if tat < least {
			victim, least = h, tat
		}
		// Still in debt: forgetting it would hand the client a fresh burst.
		// Move it to the front so the next look starts past it.
		s.lru.Get(h)
	}
	s.lru.Remove(victim)
	delete(s.tats, victim)
	s.forced++
	s.noteEviction()
}

// rebuildAfter is how many turnovers of a shard (evictions per slot) its
// maps go through before rebuild.
const rebuildAfter = 2

// noteEviction counts an eviction and rebuilds the shard's maps once the
// shard has turned over rebuildAfter times. The caller holds s.mu.
func (s *shard) noteEviction() {
	s.churn++
	if s.churn >= rebuildAfter*s.cap {
		s.rebuild()
	}
}

// rebuild moves the shard's entries, in LRU order, into a fresh LRU, and
// its TATs into a fresh map. A Go map under constant delete-and-insert
// churn accumulates tombstones and doubles its tables instead of reusing
// them (measured: about 2× after 15 turnovers), so a cache that a flood
// keeps turning over would grow although its length never changes. A fresh
// map has the size of one that was only ever filled. The cost, one more
// insert per rebuildAfter evictions, is paid only by shards that evict.
func (s *shard) rebuild() {
	s.churn = 0
	fresh, err := simplelru.NewLRU[uint64, struct{}](s.cap+1, nil)
	if err != nil {
		return // cannot happen: the size is positive; keep the old one
	}
	for _, h := range s.lru.Keys() { // oldest first, so order is kept
		fresh.Add(h, struct{}{})
	}
	s.lru = fresh
	tats := make(map[uint64]int64, len(s.tats))
	for h, tat := range s.tats {
		tats[h] = tat
	}
	s.tats = tats
}

// hash is key's 64-bit hash under the limiter's secret seed: it picks the
// shard and stands for the client in it. Two keys with one hash would be
// one client, sharing one bucket (stricter for both, never a fresh burst),
// but a sender who does not know the seed cannot choose such keys: it is
// the hash Go's own maps use against collision floods, and by chance a
// million clients hold two such keys with probability about 2^-25.
func (l *Limiter) hash(key filters.Key) uint64 {
	return maphash.Comparable(l.seed, key)
}

// shardAt picks the shard of hash h. The high half of h×n is uniform in
// [0, n) without a division.
func (l *Limiter) shardAt(h uint64) *shard {
	i, _ := bits.Mul64(h, uint64(len(l.shards)))
	return &l.shards[i]
}

// shardOf is key's shard.
func (l *Limiter) shardOf(key filters.Key) *shard { return l.shardAt(l.hash(key)) }

// Unix nanoseconds are exact only between 1678 and 2262; clamping to about
// ±126 years around 1970 keeps every sum of a time and a bounded debt
// inside int64, so an absurd clock cannot overflow into extra requests.
const clampSeconds = 4_000_000_000

func unixNanos(t time.Time) int64 {
	sec := t.Unix()
	switch {
	case sec > clampSeconds:
		return clampSeconds * 1e9
	case sec < -clampSeconds:
		return -clampSeconds * 1e9
	}
	return sec*1e9 + int64(t.Nanosecond())
}

// Len returns the number of buckets held.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// Cap returns the most buckets the Limiter will hold (MaxClients).
func (l *Limiter) Cap() int { return l.maxKeys }

// Stats returns the current size and counters.
func (l *Limiter) Stats() Stats {
	var st Stats
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.Clients += s.lru.Len()
		st.EvictedDrained += s.drained
		st.EvictedForced += s.forced
		st.Denied += s.denied
		s.mu.Unlock()
	}
	return st
}

// sameBuckets reports whether o meters requests exactly as l does, so that
// its TATs mean the same thing here.
func (l *Limiter) sameBuckets(o *Limiter) bool {
	return l.gcra == o.gcra
}

// absorb copies o's buckets that still hold debt into l. It is meant for a
// reload that changes only the size or the shard count; the copy is a
// snapshot, and requests o sees after it are not carried.
//
// l must be fresh from NewLimiter, not yet used: it takes o's hash seed,
// since the buckets are known by their keys' hashes.
//
// A drained bucket (TAT at or before the latest arrival o has decided) is
// skipped: it says nothing an absent one would not, and copying it could
// push out a client still in debt. So when the clients in debt fit l's
// shards, every one of them survives. When more land in one of l's shards
// than it holds, that shard keeps those copied last: o's shards are copied
// in index order, each from least to most recently used, so recency decides
// only among buckets from one old shard.
func (l *Limiter) absorb(o *Limiter) (copied int) {
	type entry struct {
		h   uint64
		tat int64
	}
	l.seed = o.seed
	now := int64(math.MinInt64)
	for i := range o.shards {
		os := &o.shards[i]
		os.mu.Lock()
		now = max(now, os.latest)
		os.mu.Unlock()
	}
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.latest = max(s.latest, now)
		s.mu.Unlock()
	}
	var batch []entry
	for i := range o.shards {
		os := &o.shards[i]
		os.mu.Lock()
		batch = batch[:0]
		for _, h := range os.lru.Keys() {
			if tat := os.tats[h]; tat > now {
				batch = append(batch, entry{h, tat})
			}
		}
		os.mu.Unlock()
		for _, e := range batch {
			s := l.shardAt(e.h)
			s.mu.Lock()
			if s.lru.Len() >= s.cap {
				h, _, _ := s.lru.RemoveOldest()
				delete(s.tats, h)
				s.forced++
			}
			s.tats[e.h] = e.tat
			s.lru.Add(e.h, struct{}{})
			s.mu.Unlock()
			copied++
		}
	}
	return copied
}
