package main

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/edgeguard/edgeguard"
)

// generation is a Guard in service and the requests that use it. A reload
// retires the generation it replaces, and the Guard is closed once the last
// request that entered it has left: never while a request still holds its
// WAF transaction, audit file or Redis client, and never while a request
// can still enter it. (A request that loaded the old generation just before
// the swap finds it retired and loads the new one instead.)
type generation struct {
	*edgeguard.Guard
	users   atomic.Int64
	retired atomic.Bool
	once    sync.Once
	idle    chan struct{} // closed when retired and left by every user
}

func newGeneration(g *edgeguard.Guard) *generation {
	return &generation{Guard: g, idle: make(chan struct{})}
}

// enter registers a request on gen, or reports false when gen is retired:
// the caller must load the current generation again.
func (gen *generation) enter() bool {
	gen.users.Add(1)
	if gen.retired.Load() {
		gen.leave()
		return false
	}
	return true
}

// leave ends a request that entered gen.
func (gen *generation) leave() {
	if gen.users.Add(-1) == 0 && gen.retired.Load() {
		gen.once.Do(func() { close(gen.idle) })
	}
}

// retire lets no request enter gen any more; Idle is closed when the ones
// inside have left. Call it after the successor has been swapped in.
func (gen *generation) retire() {
	gen.retired.Store(true)
	if gen.users.Load() == 0 {
		gen.once.Do(func() { close(gen.idle) })
	}
}

// Idle is closed once gen is retired and its last request has left.
func (gen *generation) Idle() <-chan struct{} { return gen.idle }

// serveHTTP serves r on the current generation, counted in it from before
// the Guard is touched until the response is done.
func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// The defer sits outside the loop: one in a loop is allocated on the
	// heap, once per request.
	gen := s.enter()
	defer gen.leave()
	gen.ServeHTTP(w, r)
}

// enter returns the current generation with one more request counted in it.
func (s *server) enter() *generation {
	for {
		if gen := s.cur.Load(); gen.enter() {
			return gen
		}
	}
}
