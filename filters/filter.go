package filters

import (
	"context"
	"net/netip"
	"time"
)

// Filter is one stage of the chain.
//
// Check must not block on the network for longer than the stage's own
// configured timeout, must not start goroutines, and must take time from
// r.Now. It may be called from many goroutines at once.
type Filter interface {
	Name() string
	Check(r *Request) Verdict
}

// Event is what the chain reports to observers about a deny: the request, the
// verdict (Stage filled in) and whether it was only a shadow deny.
type Event struct {
	Request *Request
	Verdict Verdict
}

// Observer receives every deny the chain sees, shadow denies included
// (Verdict.Shadow is set on those). Reputation turns them into strikes;
// metrics and the audit log count them. Observe runs on the request path: it
// must be quick and must not block.
type Observer interface {
	Observe(e Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

func (f ObserverFunc) Observe(e Event) { f(e) }

// ConnFilter is implemented by stages that can refuse a connection before any
// HTTP is parsed (a banned address at accept time). addr is the connection's
// client address after PROXY protocol.
type ConnFilter interface {
	RefuseConn(addr netip.Addr, now time.Time) bool
}

// Closer is implemented by stages that hold background work (list watchers,
// Redis subscriptions); the owner calls Close when the stage is replaced.
type Closer interface {
	Close() error
}

// ReadinessReporter is implemented by stages whose ability to serve as
// configured depends on something outside the process (a Redis they must
// reach). Readiness returns nil while the stage can serve; the admin
// /readyz fails while any stage instance, a route's included, reports an
// error. Each stage decides from its own settings what it requires.
type ReadinessReporter interface {
	Readiness(ctx context.Context) error
}
