// Package admission owns the concurrency limit with a waiting room: at most
// a fixed number of holders at once, a bounded number of callers waiting
// their turn first in first out, each for a bounded time, and everyone else
// refused at once. It is the whole mechanism by which a stage keeps a cost it
// cannot shrink (a WAF evaluation, an upstream's capacity) from growing
// without bound under load: a refusal is cheap and immediate, a wait is
// short and bounded, and nothing the caller did not ask for runs.
//
// There are no goroutines: a caller waits on its own channel, released by
// the holder that leaves. Timeouts use the runtime's timers, so tests drive
// them with testing/synctest's fake clock.
package admission

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Why Acquire refused. The errors a Gate returns wrap exactly one of these.
var (
	// ErrFull: every slot was held and the waiting room was full.
	ErrFull = errors.New("admission: at capacity and the waiting room is full")
	// ErrTimeout: the caller waited the gate's whole timeout.
	ErrTimeout = errors.New("admission: waited too long for a slot")
	// ErrCanceled: the caller's context ended while it waited (the client
	// went away); the error also wraps the context's error.
	ErrCanceled = errors.New("admission: gave up waiting")
)

// Gate admits at most Limit holders at once. The zero value is unusable;
// build one with New. A Gate is safe for concurrent use.
type Gate struct {
	limit   int
	room    int
	timeout time.Duration

	mu       sync.Mutex
	inFlight int       // holders, under mu
	waiting  list.List // of *waiter, oldest first, under mu

	// inside counts holders and waiters without the lock, so that in a
	// spike the callers beyond limit+room are refused on one atomic add and
	// never queue on mu behind each other.
	inside atomic.Int64

	admitted, full, timedOut, canceled atomic.Uint64
}

type waiter struct {
	ready   chan struct{} // closed when the slot is handed over
	granted bool          // under Gate.mu
}

// New returns a gate of limit slots (at least 1) and a waiting room of room
// places (0: no waiting, a caller is admitted or refused at once), where a
// caller waits at most timeout.
func New(limit, room int, timeout time.Duration) (*Gate, error) {
	switch {
	case limit < 1:
		return nil, fmt.Errorf("admission: limit %d: want at least 1", limit)
	case room < 0:
		return nil, fmt.Errorf("admission: waiting room %d: must not be negative", room)
	case timeout <= 0 && room > 0:
		return nil, fmt.Errorf("admission: timeout %v: a waiting room needs a positive timeout", timeout)
	}
	return &Gate{limit: limit, room: room, timeout: timeout}, nil
}

// Acquire takes a slot, waiting in the room if every slot is held, or
// returns an error wrapping ErrFull, ErrTimeout or ErrCanceled. After a nil
// error the caller must call Release exactly once.
func (g *Gate) Acquire(ctx context.Context) error {
	if g.inside.Add(1) > int64(g.limit+g.room) {
		g.inside.Add(-1)
		g.full.Add(1)
		return ErrFull
	}
	g.mu.Lock()
	if g.inFlight < g.limit && g.waiting.Len() == 0 {
		g.inFlight++
		g.mu.Unlock()
		g.admitted.Add(1)
		return nil
	}
	if g.waiting.Len() >= g.room {
		g.mu.Unlock()
		g.inside.Add(-1)
		g.full.Add(1)
		return ErrFull
	}
	w := &waiter{ready: make(chan struct{})}
	e := g.waiting.PushBack(w)
	g.mu.Unlock()
	return g.wait(ctx, w, e)
}

// wait blocks until w is granted a slot, the timeout passes or ctx ends.
func (g *Gate) wait(ctx context.Context, w *waiter, e *list.Element) error {
	t := time.NewTimer(g.timeout)
	defer t.Stop()
	var err error
	select {
	case <-w.ready:
		g.admitted.Add(1)
		return nil
	case <-t.C:
		err = ErrTimeout
	case <-ctx.Done():
		err = fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
	}
	g.mu.Lock()
	if w.granted {
		// The slot was handed over as we gave up: keep it, or it is lost.
		g.mu.Unlock()
		g.admitted.Add(1)
		return nil
	}
	g.waiting.Remove(e)
	g.mu.Unlock()
	g.inside.Add(-1)
	if errors.Is(err, ErrTimeout) {
		g.timedOut.Add(1)
	} else {
		g.canceled.Add(1)
	}
	return err
}

// Release gives the slot back, straight to the oldest waiter if there is one.
func (g *Gate) Release() {
	g.inside.Add(-1)
	g.mu.Lock()
	if e := g.waiting.Front(); e != nil {
		w := g.waiting.Remove(e).(*waiter)
		w.granted = true
		close(w.ready)
		g.mu.Unlock()
		return
	}
	if g.inFlight == 0 {
		g.mu.Unlock()
		panic("admission: Release without a matching Acquire")
	}
	g.inFlight--
	g.mu.Unlock()
}

// Limit is the number of slots; Room the number of waiting places; Timeout
// the longest wait.
func (g *Gate) Limit() int             { return g.limit }
func (g *Gate) Room() int              { return g.room }
func (g *Gate) Timeout() time.Duration { return g.timeout }

// State is a snapshot of the gate.
type State struct {
	// InFlight and Queued are the holders and the waiters now.
	InFlight, Queued int
	// Admitted, Full, TimedOut and Canceled count Acquire's outcomes since
	// the gate was built.
	Admitted, Full, TimedOut, Canceled uint64
}

// State returns the gate's current holders, waiters and counts.
func (g *Gate) State() State {
	g.mu.Lock()
	s := State{InFlight: g.inFlight, Queued: g.waiting.Len()}
	g.mu.Unlock()
	s.Admitted, s.Full, s.TimedOut, s.Canceled = g.admitted.Load(), g.full.Load(), g.timedOut.Load(), g.canceled.Load()
	return s
}
