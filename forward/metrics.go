package forward

import "github.com/edgeguard/edgeguard/filters"

// CollectMetrics emits pool, backend and shield state. Labels are config
// names (pool, route) and backend host:port, never client data.
func (f *Forwarder) CollectMetrics(emit func(filters.Sample)) {
	now := f.clock().UnixNano()
	g := func(name, help string, v float64, labels ...string) {
		emit(filters.Sample{Name: name, Help: help, Kind: filters.Gauge, Labels: labels, Value: v})
	}
	c := func(name, help string, v float64, labels ...string) {
		emit(filters.Sample{Name: name, Help: help, Kind: filters.Counter, Labels: labels, Value: v})
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, p := range f.pools {
		for _, b := range p.backends {
			l := []string{"pool", p.name, "backend", b.host}
			g("forward_backend_healthy", "1 when the backend passes active health checks (always 1 without them).", b2f(b.up.Load()), l...)
			g("forward_backend_ejected", "1 while the backend is passively ejected.", b2f(now < b.ejectedUntil.Load()), l...)
			g("forward_backend_outstanding", "Requests in flight to the backend.", float64(b.outstanding.Load()), l...)
			c("forward_backend_requests_total", "Tries sent to the backend, retries included.", float64(b.requests.Load()), l...)
			c("forward_backend_failures_total", "Failures of the backend that count towards ejection: connection errors, timeouts, dropped connections and the outlier statuses.", float64(b.failures.Load()), l...)
			c("forward_backend_ejections_total", "Passive ejections of the backend.", float64(b.ejections.Load()), l...)
			c("forward_backend_ejections_capped_total", "Ejections of the backend refused because the pool's ejection cap was reached.", float64(b.capped.Load()), l...)
		}
		l := []string{"pool", p.name}
		c("forward_retries_total", "Requests retried on another backend of the pool.", float64(p.retries.Load()), l...)
		c("forward_upstream_errors_total", "Requests answered 502 because no backend of the pool could serve them.", float64(p.errors.Load()), l...)
		c("forward_pool_panic_picks_total", "Backend picks made in panic mode: too few backends available, passive ejections ignored.", float64(p.panics.Load()), l...)
		c("forward_pool_unavailable_total", "Requests answered 503 because the pool had no available backend.", float64(p.unavailable.Load()), l...)
	}
	for _, rt := range f.routes {
		l := []string{"route", rt.name}
		g("forward_route_closed", "1 while the route is closed by the sold-out switch.", b2f(f.closed.isClosed(rt.name)), l...)
		rej := func(reason string, v uint64) {
			c("forward_route_rejected_total", "Requests the route's shield answered without forwarding, by reason.", float64(v), "route", rt.name, "reason", reason)
		}
		rej(reasonClosed, rt.closedHits.Load())
		if rt.capOn {
			rej(reasonCap, rt.capRejects.Load())
			c("forward_route_cap_errors_total", "Route cap store failures (on_error applied).", float64(rt.capErrors.Load()), l...)
		}
		if rt.gate != nil {
			st := rt.gate.State()
			g("forward_route_in_flight", "Requests of the route in flight to its pool.", float64(st.InFlight), l...)
			g("forward_route_queued", "Requests of the route in the waiting room.", float64(st.Queued), l...)
			rej(reasonQueueFull, st.Full)
			// A waiter whose client left counts as timed out, as it always has here.
			rej(reasonQueueTimeout, st.TimedOut+st.Canceled)
		}
	}
	c("forward_no_route_total", "Requests no route matched, answered 404.", float64(f.noRoute.Load()))
	c("forward_h2c_offers_dropped_total", "Requests offering an upgrade to h2c, served as HTTP/1.1 with the offer removed.", float64(f.h2cRefused.Load()))
}

var _ filters.MetricsSource = (*Forwarder)(nil)
