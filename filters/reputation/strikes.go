package reputation

import (
	"sync"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// rule is one strike count's threshold and window.
type rule struct {
	threshold int
	window    time.Duration
}

// rules maps a deny's stage to the count it adds to: index 0 is the global
// count, 1.. are the stages with their own rule.
type rules struct {
	byStage map[string]int
	list    []rule
}

func newRules(s Strikes) rules {
	r := rules{byStage: map[string]int{}, list: []rule{{s.Threshold, s.Window.D()}}}
	for _, stage := range sortedKeys(s.PerStage) {
		pr := s.PerStage[stage]
		rl := rule{pr.Threshold, pr.Window.D()}
		if rl.threshold == 0 {
			rl.threshold = s.Threshold
		}
		if rl.window == 0 {
			rl.window = s.Window.D()
		}
		r.byStage[stage] = len(r.list)
		r.list = append(r.list, rl)
	}
	return r
}

func (r rules) index(stage string) int { return r.byStage[stage] }

// count is one running strike count: strikes since start.
type count struct {
	start int64 // unix nanoseconds of the first strike
	n     int
}

// strikeTable counts strikes per client key in a bounded LRU: a flood of
// distinct keys evicts the least recently struck, it never grows memory past
// the bound. One mutex: Observe runs only for denies, which are far rarer
// than requests, and the critical section is a map update.
type strikeTable struct {
	mu  sync.Mutex
	lru *simplelru.LRU[filters.Key, []count]
}

func newStrikeTable(maxTracked int) *strikeTable {
	l, _ := simplelru.NewLRU[filters.Key, []count](maxTracked, nil)
	return &strikeTable{lru: l}
}

func (t *strikeTable) resize(maxTracked int) {
	t.mu.Lock()
	t.lru.Resize(maxTracked)
	t.mu.Unlock()
}

// strikeAt adds one strike to key's count idx at now and reports whether
// the count reached its threshold; a count that reaches it starts over.
func (t *strikeTable) strikeAt(now time.Time, key filters.Key, idx int, rs rules) bool {
	r := rs.list[idx]
	ns := now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	counts, ok := t.lru.Get(key)
	if !ok || len(counts) != len(rs.list) {
		// A reload may change the number of rules; counts then start over.
		counts = make([]count, len(rs.list))
		t.lru.Add(key, counts)
	}
	c := &counts[idx]
	if c.n == 0 || ns-c.start >= int64(r.window) || ns < c.start {
		c.start, c.n = ns, 0
	}
	c.n++
	if c.n >= r.threshold {
		c.n = 0
		return true
	}
	return false
}

// forget drops key's counts (after an unban, so the client starts clean).
func (t *strikeTable) forget(key filters.Key) {
	t.mu.Lock()
	t.lru.Remove(key)
	t.mu.Unlock()
}

func (t *strikeTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}
