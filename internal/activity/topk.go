package activity

import (
	"slices"
	"sync"
	"time"
)

// summary is one Space-Saving summary (Metwally, Agrawal and El Abbadi,
// "Efficient Computation of Frequent and Top-k Elements in Data Streams",
// ICDT 2005) of at most k keys. A key it holds is counted exactly from
// the moment it came in; a new key, with the summary full, takes the slot
// of the key with the smallest count and inherits that count as its
// possible overestimate (err). So for every key held, count − err ≤ true
// count ≤ count; and a key whose true count exceeds n/k (n keys added) is
// always held, because the smallest count never exceeds n/k.
type summary[K, V comparable] struct {
	index map[K]int // slot of each key held
	slots []slot[K, V]
	n     uint64 // keys added
}

type slot[K, V comparable] struct {
	key        K
	count, err uint64
	val        V // the value given with the key's latest addition
}

func newSummary[K, V comparable](k int) summary[K, V] {
	return summary[K, V]{index: make(map[K]int, k), slots: make([]slot[K, V], 0, k)}
}

// add counts key once, keeping val as its value.
func (s *summary[K, V]) add(key K, val V) {
	s.n++
	if i, ok := s.index[key]; ok {
		sl := &s.slots[i]
		sl.count++
		sl.val = val
		return
	}
	if len(s.slots) < cap(s.slots) {
		s.index[key] = len(s.slots)
		s.slots = append(s.slots, slot[K, V]{key: key, count: 1, val: val})
		return
	}
	m := 0
	for i := 1; i < len(s.slots); i++ {
		if s.slots[i].count < s.slots[m].count {
			m = i
		}
	}
	delete(s.index, s.slots[m].key)
	floor := s.slots[m].count
	s.slots[m] = slot[K, V]{key: key, count: floor + 1, err: floor, val: val}
	s.index[key] = m
}

// floor is what a key the summary does not hold may have been counted at
// most: the smallest count when the summary is full, else 0 (every key
// added is held).
func (s *summary[K, V]) floor() uint64 {
	if len(s.slots) < cap(s.slots) {
		return 0
	}
	f := s.slots[0].count
	for _, sl := range s.slots[1:] {
		f = min(f, sl.count)
	}
	return f
}

func (s *summary[K, V]) reset() {
	clear(s.index)
	s.slots = s.slots[:0]
	s.n = 0
}

// Hitter is one key of a top-k list: Count is an upper bound of how often
// the key was seen and Count − Error a lower bound.
type Hitter[K, V comparable] struct {
	Key          K
	Count, Error uint64
	Value        V
}

// topK is a Space-Saving top-k over a sliding pair of windows of period
// seconds: keys are counted into the current window's summary; when a new
// window starts, the current one becomes the previous and a fresh one
// starts. The list reported merges the two, so it covers between one and
// two periods, and what happened before fades out instead of holding the
// list for the life of the process. Memory: two summaries of k slots.
type topK[K, V comparable] struct {
	mu        sync.Mutex
	period    int64 // seconds
	window    int64 // cur's window: Unix seconds / period
	cur, prev summary[K, V]
}

func newTopK[K, V comparable](k int, period int64) *topK[K, V] {
	return &topK[K, V]{period: period, cur: newSummary[K, V](k), prev: newSummary[K, V](k)}
}

func (t *topK[K, V]) windowOf(now time.Time) int64 {
	u := now.Unix()
	w := u / t.period
	if u < 0 && u%t.period != 0 {
		w--
	}
	return w
}

// add counts key at now.
func (t *topK[K, V]) add(now time.Time, key K, val V) {
	w := t.windowOf(now)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case w <= t.window:
		// This window, or a late report from the one before: counted now.
	case w == t.window+1:
		t.prev, t.cur = t.cur, t.prev
		t.cur.reset()
		t.window = w
	default:
		t.prev.reset()
		t.cur.reset()
		t.window = w
	}
	t.cur.add(key, val)
}

// top returns the keys as of now, the most counted first: the current and
// the previous window merged, or only the previous one once now is in a
// window with nothing counted yet. A key missing from one full summary may
// have been counted there up to its floor, which is added to both its
// Count and its Error, so the bounds hold for the merge too.
func (t *topK[K, V]) top(now time.Time) []Hitter[K, V] {
	w := t.windowOf(now)
	t.mu.Lock()
	defer t.mu.Unlock()
	var newer, older *summary[K, V]
	switch {
	case w <= t.window:
		newer, older = &t.cur, &t.prev
	case w == t.window+1:
		newer = &t.cur
	default:
		return []Hitter[K, V]{}
	}
	out := make([]Hitter[K, V], 0, len(newer.slots))
	var olderFloor uint64
	if older != nil {
		olderFloor = older.floor()
	}
	newerFloor := newer.floor()
	for _, sl := range newer.slots {
		h := Hitter[K, V]{Key: sl.key, Count: sl.count, Error: sl.err, Value: sl.val}
		if older != nil {
			if i, ok := older.index[sl.key]; ok {
				h.Count += older.slots[i].count
				h.Error += older.slots[i].err
			} else {
				h.Count += olderFloor
				h.Error += olderFloor
			}
		}
		out = append(out, h)
	}
	if older != nil {
		for _, sl := range older.slots {
			if _, ok := newer.index[sl.key]; ok {
				continue
			}
			out = append(out, Hitter[K, V]{Key: sl.key, Count: sl.count + newerFloor, Error: sl.err + newerFloor, Value: sl.val})
		}
	}
	slices.SortStableFunc(out, func(a, b Hitter[K, V]) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return int(min(max(int64(a.Error)-int64(b.Error), -1), 1))
	})
	return out[:min(len(out), cap(newer.slots))]
}
