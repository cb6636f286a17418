package forward

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/httpkit"
)

// attempt is the forwarder's per-request state, carried to the Rewrite and
// the transport through the outbound request's context. It is that context
// itself (the inbound request's, with attemptKey answered here), so that
// carrying it costs no allocation of its own; what the request needs
// besides (the client's writer, the bodies' wrappers) sits in the same
// allocation.
type attempt struct {
	context.Context
	fr    *filters.Request
	route *route
	pool  *pool
	first *backend
	local net.Addr // the listener address the client reached
	tried [4]*backend
	n     int
	send  sendWriter // the client's writer

	reqBody  trackedBody // the inbound body as the transport reads it
	respBody countedBody // the response body, counted out of outstanding on Close
}

type attemptKey struct{}

// Value answers attemptKey with a itself and anything else from the
// inbound request's context.
func (a *attempt) Value(key any) any {
	if key == (attemptKey{}) {
		return a
	}
	return a.Context.Value(key)
}

func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// ServeHTTP forwards r. The chain's view of the request comes from
// r.Context() (filters.FromContext); without one (the forwarder used on its
// own) the TCP peer is taken as the client and a request id is made up.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fr := filters.FromContext(r.Context())
	if fr == nil {
		fr = standalone(r)
	}
	f.forward(w, r, fr, fr.Route == "")
}

// Forward forwards r, of which fr is the chain's view, on the route
// fr.Route names: the one Route gave for r, "" for the default route. The
// root package calls it directly, having routed r before the chain, which
// spares a context layer, a copy of r and a second routing per request.
func (f *Forwarder) Forward(w http.ResponseWriter, r *http.Request, fr *filters.Request) {
	f.forward(w, r, fr, false)
}

// forward forwards r on fr.Route, or on the route r takes when reroute is
// set or fr.Route names no route of f's.
func (f *Forwarder) forward(w http.ResponseWriter, r *http.Request, fr *filters.Request, reroute bool) {
	if h := w.Header(); fr.ID != "" && h.Get("X-Request-Id") != fr.ID {
		h.Set("X-Request-Id", fr.ID)
	}
	if upgradesToH2C(r.Header) {
		// A backend that accepted it would turn the connection into an
		// HTTP/2 tunnel whose requests no stage ever sees. Clients offer
		// it on plain requests (curl --http2): drop the offer and serve
		// the request as HTTP/1.1.
		f.h2cRefused.Add(1)
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
	}
	rt := f.def
	if fr.Route != "" {
		rt = f.byName[fr.Route]
	}
	if reroute || (rt == nil && fr.Route != "") {
		var err error
		if rt, err = f.route(r); err != nil {
			refuse(w, fr, http.StatusBadRequest, 0, "ambiguous path")
			return
		}
	}
	if rt == nil {
		f.noRoute.Add(1)
		refuse(w, fr, http.StatusNotFound, 0, "no route")
		return
	}
	if f.closed.isClosed(rt.name) {
		rt.closedHits.Add(1)
		c := rt.closed
		h := w.Header()
		h.Set("Content-Type", c.ContentType)
		h.Set("Cache-Control", "no-store")
		if c.RetryAfter > 0 {
			h.Set("Retry-After", httpkit.RetryAfter(c.RetryAfter.D()))
		}
		w.WriteHeader(c.Status)
		io.WriteString(w, c.Body)
		return
	}
	if rt.capOn {
		if ok, wait := f.capAllows(r.Context(), rt, fr); !ok {
			refuse(w, fr, http.StatusServiceUnavailable, wait, "route at capacity")
			return
		}
	}
	if rt.gate != nil {
		if err := rt.gate.Acquire(r.Context()); err != nil {
			refuse(w, fr, http.StatusServiceUnavailable, rt.gate.Timeout(), "route at capacity")
			return
		}
		defer rt.gate.Release()
	}
	p := rt.pool
	now := f.clock()
	b := p.pick(now.UnixNano(), fr.Key, nil)
	if b == nil {
		p.unavailable.Add(1)
		refuse(w, fr, http.StatusServiceUnavailable, p.retryAfter(now), "no healthy backend")
		return
	}
	fr.Pool, fr.Upstream = p.name, b.host // for the access log and metrics
	a := &attempt{Context: r.Context(), fr: fr, route: rt, pool: p, first: b}
	a.local, _ = a.Context.Value(http.LocalAddrContextKey).(net.Addr)
	a.send = newSendWriter(w, f.send)
	f.proxy.ServeHTTP(&a.send, r.WithContext(a))
}

// upgradesToH2C reports whether any Upgrade header line names h2c (case
// insensitive, with or without a version).
func upgradesToH2C(h http.Header) bool {
	for _, v := range h.Values("Upgrade") {
		for tok := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(tok), "/")
			if strings.EqualFold(strings.TrimSpace(name), "h2c") {
				return true
			}
		}
	}
	return false
}

// capAllows asks the route cap, applying the route's on_error when the store
// fails.
func (f *Forwarder) capAllows(ctx context.Context, rt *route, fr *filters.Request) (bool, time.Duration) {
	now := fr.Now
	if now.IsZero() {
		now = f.clock()
	}
	d, err := rt.limiter.AllowRoute(ctx, rt.capKey, rt.limit, now)
	if err != nil {
		rt.capErrors.Add(1)
		// One warning a second per route: an outage must not flood the log.
		if last := rt.lastCapWarn.Load(); now.UnixNano()-last > int64(time.Second) && rt.lastCapWarn.CompareAndSwap(last, now.UnixNano()) {
			f.log.Warn("route cap store failed", "route", rt.name, "on_error", rt.onError, "err", err)
		}
		switch rt.onError {
		case OnErrorAllow:
			return true, 0
		case OnErrorDeny:
			rt.capRejects.Add(1)
			return false, time.Second
		}
		d, _ = f.local.AllowRoute(ctx, rt.capKey, rt.limit, now)
	}
	if !d.Allowed {
		rt.capRejects.Add(1)
		return false, d.RetryAfter
	}
	return true, 0
}

// upstreamError answers a request that no backend could serve: 502 with the
// request id, one log line.
func (f *Forwarder) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	a := attemptFrom(r.Context())
	if r.Context().Err() != nil {
		// The client went away; there is nobody to answer and nothing
		// wrong upstream.
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	a.pool.errors.Add(1)
	f.log.Warn("upstream request failed", "route", a.route.name, "pool", a.pool.name,
		"request_id", a.fr.ID, "attempts", a.n+1, "err", err)
	refuse(w, a.fr, http.StatusBadGateway, 0, "upstream unavailable")
}

// refuse writes a short plain-text answer naming the request id.
func refuse(w http.ResponseWriter, fr *filters.Request, status int, retryAfter time.Duration, msg string) {
	httpkit.WriteRefusal(w, status, retryAfter, "edgeguard: "+msg+" (request id "+fr.ID+")\n")
}

// standalone builds the chain's view of a request that did not pass one.
func standalone(r *http.Request) *filters.Request {
	fr := &filters.Request{HTTP: r, Now: time.Now()}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		fr.Peer = ap
		fr.Client, fr.ClientPort = ap.Addr().Unmap(), ap.Port()
		fr.Key = filters.KeyOf(fr.Client, 64)
		fr.ForwardedFor = fr.Client.String()
	}
	fr.ID = httpkit.NewRequestID()
	return fr
}
