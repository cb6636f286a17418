package forward

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// RouteDecision is a RouteLimiter's answer.
type RouteDecision struct {
	Allowed bool
	// RetryAfter is when the next request would be allowed (denials only).
	RetryAfter time.Duration
}

// RouteLimiter is the store behind the fleet-wide route cap: a GCRA over
// one key per route, shared by every edge node. The limit's Burst is the
// number of requests an idle route admits at the same instant (below 1 is
// taken as 1). The owner adapts the quota stage's Redis store to it; an
// error makes the route's on_error decide. AllowRoute is called on the
// request path and must be bounded by its own timeout.
type RouteLimiter interface {
	AllowRoute(ctx context.Context, key string, limit filters.Limit, now time.Time) (RouteDecision, error)
}

// MemoryRouteLimiter is a RouteLimiter in this process's memory: the cap of
// a single node, and the fallback of on_error: local. Safe for concurrent
// use; the zero value is ready.
type MemoryRouteLimiter struct {
	mu  sync.Mutex
	tat map[string]int64 // theoretical arrival time per key, Unix ns
}

// AllowRoute applies GCRA (filters.GCRA, in nanoseconds) at now: an idle
// key admits Burst requests at once, then one per emission interval.
func (m *MemoryRouteLimiter) AllowRoute(_ context.Context, key string, limit filters.Limit, now time.Time) (RouteDecision, error) {
	if limit.Rate.Interval() <= 0 {
		return RouteDecision{Allowed: true}, nil
	}
	limit.Burst = max(limit.Burst, 1)
	g, t := limit.GCRA(time.Nanosecond), now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tat == nil {
		m.tat = make(map[string]int64)
	}
	tat, ok := m.tat[key]
	if !ok {
		tat = t
	}
	next, wait := g.Take(tat, t, 1)
	if wait > 0 {
		return RouteDecision{RetryAfter: time.Duration(wait)}, nil
	}
	m.tat[key] = next
	return RouteDecision{Allowed: true}, nil
}

// Rejection reasons, also metric label values.
const (
	reasonQueueFull    = "queue_full"
	reasonQueueTimeout = "queue_timeout"
	reasonCap          = "cap"
	reasonClosed       = "closed"
)

// closedSet is this node's copy of the closed routes: readers load a map
// that is never changed once published, so a check is one atomic load and
// one lookup.
//
// Changes made here that the fleet's store did not take (Redis was down)
// are kept as overrides and applied over every replace, so that a resync
// from Redis does not undo them; the fleet switch writes them when Redis is
// back and drops each once written.
type closedSet struct {
	mu       sync.Mutex // serialises writers; guards override
	cur      atomic.Pointer[map[string]bool]
	override map[string]bool // route → closed, not yet in the fleet's store
}

func (s *closedSet) isClosed(route string) bool {
	m := s.cur.Load()
	return m != nil && (*m)[route]
}

// set changes one route; an override of it stays.
func (s *closedSet) set(route string, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLocked(route, closed)
}

func (s *closedSet) setLocked(route string, closed bool) {
	old := s.cur.Load()
	next := make(map[string]bool)
	if old != nil {
		for k := range *old {
			next[k] = true
		}
	}
	if closed {
		next[route] = true
	} else {
		delete(next, route)
	}
	s.cur.Store(&next)
}

// setFromFleet applies a change another node (or this one) wrote to the
// fleet's store. It is newer than a local-only change of the same route,
// which it replaces.
func (s *closedSet) setFromFleet(route string, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.override, route)
	s.setLocked(route, closed)
}

// keepLocal records that route's change to closed holds on this node only.
func (s *closedSet) keepLocal(route string, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.override == nil {
		s.override = make(map[string]bool)
	}
	s.override[route] = closed
}

// written drops route's override if it still says closed: the fleet's
// store has it now.
func (s *closedSet) written(route string, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.override[route]; ok && c == closed {
		delete(s.override, route)
	}
}

// overrides returns a copy of the local-only changes.
func (s *closedSet) overrides() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.override)
}

// replace sets the closed routes to routes, with the overrides on top.
func (s *closedSet) replace(routes []string) {
	next := make(map[string]bool, len(routes))
	for _, r := range routes {
		next[r] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for r, closed := range s.override {
		if closed {
			next[r] = true
		} else {
			delete(next, r)
		}
	}
	s.cur.Store(&next)
}

// inherit takes over prev's closed routes and overrides (a reload).
func (s *closedSet) inherit(prev *closedSet) {
	// The overrides move: the replaced forwarder keeps running while its
	// requests drain, and must not flush a change the operator has since
	// made again on this one.
	prev.mu.Lock()
	routes, over := prev.list(), prev.override
	prev.override = nil
	prev.mu.Unlock()
	s.mu.Lock()
	s.override = over
	s.mu.Unlock()
	s.replace(routes)
}

func (s *closedSet) list() []string {
	m := s.cur.Load()
	if m == nil {
		return nil
	}
	out := make([]string, 0, len(*m))
	for k := range *m {
		out = append(out, k)
	}
	return out
}
