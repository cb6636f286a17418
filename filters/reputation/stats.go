package reputation

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// labelled is a counter per label value. Its label values come from stage
// names and fixed words, a bounded set, never from client data.
type labelled struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (l *labelled) inc(label string) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]uint64{}
	}
	l.m[label]++
	l.mu.Unlock()
}

// each calls fn for each label value in sorted order, outside the lock.
func (l *labelled) each(fn func(label string, v uint64)) {
	l.mu.Lock()
	keys := make([]string, 0, len(l.m))
	for k := range l.m {
		keys = append(keys, k)
	}
	vals := make([]uint64, len(keys))
	sort.Strings(keys)
	for i, k := range keys {
		vals[i] = l.m[k]
	}
	l.mu.Unlock()
	for i, k := range keys {
		fn(k, vals[i])
	}
}

// stats are the stage's counters. They are carried from one Filter to the
// next on reload so counters never go backwards while the process lives.
type stats struct {
	deniedBanned  atomic.Uint64
	deniedList    atomic.Uint64
	connRefused   atomic.Uint64
	listErrors    atomic.Uint64
	strikes       labelled // enforced stages' denies, by stage
	bans          labelled // bans made here, by source
	wouldBan      labelled // shadow mode, by source
	strikesShadow labelled // shadow strikes, by stage

	bansRefused  atomic.Uint64 // strike bans refused at max_bans
	refusalLogAt atomic.Int64  // unix nanoseconds of the last refusal logged
}

// refusalLogDue reports whether a refused ban at now is to be logged: none
// was logged within every before (or after) now. Concurrent callers log
// once.
func (s *stats) refusalLogDue(now time.Time, every time.Duration) bool {
	last := s.refusalLogAt.Load()
	ns := now.UnixNano()
	if last != 0 && ns-last < int64(every) && last-ns < int64(every) {
		return false
	}
	return s.refusalLogAt.CompareAndSwap(last, ns)
}

func counter(name, help string, v uint64, labels ...string) filters.Sample {
	return filters.Sample{Name: name, Help: help, Kind: filters.Counter, Labels: labels, Value: float64(v)}
}

func gauge(name, help string, v float64, labels ...string) filters.Sample {
	return filters.Sample{Name: name, Help: help, Kind: filters.Gauge, Labels: labels, Value: v}
}
