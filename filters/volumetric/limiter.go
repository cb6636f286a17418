package volumetric

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
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
// for the algorithm and the eviction order.
//
// Time is an argument: AllowAt takes the request's arrival time and never
// reads the clock, so a test can walk fixed instants. A Limiter is safe for
// concurrent use; calls on keys in different shards do not contend. It
// starts no goroutines and needs no Close.
type Limiter struct {
	gcra    filters.GCRA // in nanoseconds; Burst resolved, at least 1
	maxKeys int

	seed0, seed1 uint64 // secret shard-hash seeds
	shards       []shard
	scan         int // scanDepth; tests set 0 to get plain LRU eviction
}

// slot is a client's state. Slots live in per-shard chunks that hold no
// pointers, so the garbage collector never looks inside them, and a slot
// is reused in place by the client that evicts its owner.
type slot struct {
	tat   int64  // theoretical arrival time, Unix ns
	stamp uint64 // shard clock when the entry last moved to the LRU front
}

// chunkSlots is how many slots a shard allocates at a time: slots are
// never moved (the LRU points at them), so the store grows by chunks
// instead of by reallocation.
const chunkSlots = 512

// shard is one independently locked LRU. The padding keeps two shards'
// hot words off one cache line.
type shard struct {
	mu     sync.Mutex
	lru    *simplelru.LRU[filters.Key, *slot]
	chunks [][]slot
	used   int // slots handed out so far; never more than cap
	cap    int
	// clock counts moves to the LRU front. An entry is moved again only
	// when at least lazy moves happened since its last one: an entry that
	// recent is far from the tail anyway, and skipping the move skips the
	// list surgery that dominates the cost of a decision (three cache
	// lines of other entries). lazy is a quarter of the shard, so the
	// eviction order is the exact LRU order up to that slack.
	clock   uint64
	lazy    uint64
	drained uint64 // evictions of drained entries
	forced  uint64 // evictions of entries that still held debt
	denied  uint64
	// latest is the latest arrival time (Unix ns) the shard has decided: the
	// limiter's own "now", which absorb uses to tell drained buckets.
	latest int64
	// churn counts evictions since the LRU was last rebuilt (see rebuild).
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
		seed0:   rand.Uint64(),
		seed1:   rand.Uint64(),
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
		s.lazy = uint64(s.cap / 4)
		s.latest = math.MinInt64 // nothing decided yet
		// The LRU's own cap is one above ours: makeRoom evicts first, so
		// simplelru's blind oldest-first eviction never fires.
		lru, err := simplelru.NewLRU[filters.Key, *slot](s.cap+1, nil)
		if err != nil {
			return nil, fmt.Errorf("volumetric: building shard %d with %d slots: %w", i, s.cap, err)
		}
		s.lru = lru
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
	s := l.shardOf(key)
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
	sl, found := s.lru.Peek(key)
	tat := t
	if found {
		tat = sl.tat
	}
	tat, wait := l.gcra.Take(tat, t, int64(n))
	if wait > 0 {
		s.denied++
		s.touch(key, sl) // found: an unseen key always conforms
		s.mu.Unlock()
		return false, time.Duration(wait)
	}
	if found {
		sl.tat = tat
		s.touch(key, sl)
	} else {
		sl = s.makeRoom(t, l.scan)
		*sl = slot{tat: tat, stamp: s.clock}
		s.clock++
		s.lru.Add(key, sl)
	}
	s.mu.Unlock()
	return true, 0
}

// touch records a use of key: it moves the entry to the LRU front unless
// it got there recently (see shard.lazy). The caller holds s.mu.
func (s *shard) touch(key filters.Key, sl *slot) {
	if s.clock-sl.stamp < s.lazy {
		return
	}
	s.lru.Get(key)
	sl.stamp = s.clock
	s.clock++
}

// makeRoom returns a slot for a new entry. If the shard is full it evicts
// the first drained entry among the scan least recently used, else the
// least recently used, and hands back the victim's slot. The caller holds
// s.mu.
func (s *shard) makeRoom(t int64, scan int) *slot {
	n := s.lru.Len()
	if n < s.cap {
		return s.newSlot()
	}
	oldest, victim, ok := s.lru.GetOldest()
	if !ok { // cap 0 cannot happen: NewLimiter gives every shard a slot
		return s.newSlot()
	}
	for i := 0; i < scan && i < n; i++ {
		k, sl, _ := s.lru.GetOldest()
		if sl.tat <= t {
			s.lru.Remove(k)
			s.drained++
			s.noteEviction()
			return sl
		}
		// Still in debt: forgetting it would hand the client a fresh burst.
		// Move it to the front so the next look starts past it.
		s.lru.Get(k)
		sl.stamp = s.clock
		s.clock++
	}
	s.lru.Remove(oldest)
	s.forced++
	s.noteEviction()
	return victim
}

// rebuildAfter is how many turnovers of a shard (evictions per slot) its
// LRU goes through before rebuild.
const rebuildAfter = 2

// noteEviction counts an eviction and rebuilds the shard's LRU once the
// shard has turned over rebuildAfter times. The caller holds s.mu.
func (s *shard) noteEviction() {
	s.churn++
	if s.churn >= rebuildAfter*s.cap {
		s.rebuild()
	}
}

// rebuild moves the shard's entries, in LRU order, into a fresh LRU. A Go
// map under constant delete-and-insert churn accumulates tombstones and
// doubles its tables instead of reusing them (measured: about 2× after 15
// turnovers), so a cache that a flood keeps turning over would grow
// although its length never changes. A fresh map has the size of one that
// was only ever filled. The cost, one more insert per rebuildAfter
// evictions, is paid only by shards that evict.
func (s *shard) rebuild() {
	s.churn = 0
	fresh, err := simplelru.NewLRU[filters.Key, *slot](s.cap+1, nil)
	if err != nil {
		return // cannot happen: the size is positive; keep the old one
	}
	for _, k := range s.lru.Keys() { // oldest first, so order is kept
		sl, _ := s.lru.Peek(k)
		fresh.Add(k, sl)
	}
	s.lru = fresh
}

// newSlot hands out a never used slot; the caller has checked that the
// shard is below its cap.
func (s *shard) newSlot() *slot {
	i := s.used % chunkSlots
	if i == 0 {
		s.chunks = append(s.chunks, make([]slot, min(chunkSlots, s.cap-s.used)))
	}
	s.used++
	return &s.chunks[len(s.chunks)-1][i]
}

// shardOf picks key's shard from a seeded hash, so that a sender cannot
// choose addresses that all land in one shard.
func (l *Limiter) shardOf(key filters.Key) *shard {
	lo := binary.LittleEndian.Uint64(key[:8]) ^ l.seed0
	hi := binary.LittleEndian.Uint64(key[8:]) ^ l.seed1
	h := bits.RotateLeft64(lo*0x9e3779b97f4a7c15, 29) ^ hi
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 31
	// The high half of h×n is uniform in [0, n) without a division.
	i, _ := bits.Mul64(h*0x94d049bb133111eb, uint64(len(l.shards)))
	return &l.shards[i]
}

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
// A drained bucket (TAT at or before the latest arrival o has decided) is
// skipped: it says nothing an absent one would not, and copying it could
// push out a client still in debt. So when the clients in debt fit l's
// shards, every one of them survives. When more land in one of l's shards
// than it holds, that shard keeps those copied last: o's shards are copied
// in index order, each from least to most recently used, so recency decides
// only among buckets from one old shard.
func (l *Limiter) absorb(o *Limiter) (copied int) {
	type entry struct {
		key filters.Key
		tat int64
	}
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
		for _, k := range os.lru.Keys() {
			if sl, ok := os.lru.Peek(k); ok && sl.tat > now {
				batch = append(batch, entry{k, sl.tat})
			}
		}
		os.mu.Unlock()
		for _, e := range batch {
			s := l.shardOf(e.key)
			s.mu.Lock()
			var sl *slot
			if s.lru.Len() < s.cap {
				sl = s.newSlot()
			} else {
				_, sl, _ = s.lru.RemoveOldest()
				s.forced++
			}
			*sl = slot{tat: e.tat, stamp: s.clock}
			s.clock++
			s.lru.Add(e.key, sl)
			s.mu.Unlock()
			copied++
		}
	}
	return copied
}
