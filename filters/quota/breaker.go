package quota

import (
	"sync"
	"sync/atomic"
	"time"
)

// Breaker states, also the values of the breaker-state gauge.
const (
	breakerClosed   int32 = 0
	breakerOpen     int32 = 1
	breakerHalfOpen int32 = 2
)

// breaker is a circuit breaker over the request clock: after `failures`
// consecutive failures it opens for a back-off; then one caller probes, and
// its success closes the breaker while its failure reopens it for twice as
// long (up to max). While it is open nobody waits on Redis: requests go
// straight to on_error, and a restarted Redis is found by the next probe.
//
// The closed state is read with one atomic load, so the healthy path takes
// no lock.
type breaker struct {
	state    atomic.Int32
	failures atomic.Int32
	opens    atomic.Int64

	mu        sync.Mutex
	threshold int32
	base, max time.Duration
	backoff   time.Duration
	openUntil time.Time
	probing   bool
}

func newBreaker(threshold int, base, max time.Duration) *breaker {
	return &breaker{threshold: int32(threshold), base: base, max: max, backoff: base}
}

// allow reports whether this call may go to Redis at now.
func (b *breaker) allow(now time.Time) bool {
	if b.state.Load() == breakerClosed {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case breakerClosed:
		return true
	case breakerOpen:
		if now.Before(b.openUntil) {
			return false
		}
		b.state.Store(breakerHalfOpen)
		b.probing = true
		return true
	default: // half open: one probe at a time
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
}

func (b *breaker) success() {
	if b.state.Load() == breakerClosed && b.failures.Load() == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures.Store(0)
	b.state.Store(breakerClosed)
	b.backoff = b.base
	b.probing = false
}

// failure records a failed call at now and reports whether it opened the
// breaker (for logging the transition once).
func (b *breaker) failure(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case breakerHalfOpen:
		b.backoff = min(2*b.backoff, b.max)
	case breakerOpen:
		return false // a call that started before the breaker opened
	default:
		if b.failures.Add(1) < b.threshold {
			return false
		}
		b.backoff = b.base
	}
	b.probing = false
	b.state.Store(breakerOpen)
	b.openUntil = now.Add(b.backoff)
	b.opens.Add(1)
	return true
}

// retryIn is how long until the breaker lets a probe through, for the
// Retry-After of on_error: deny.
func (b *breaker) retryIn(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := b.openUntil.Sub(now); d > 0 {
		return d
	}
	return 0
}
