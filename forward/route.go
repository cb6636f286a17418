package forward

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/admission"
)

// route is a built Route.
type route struct {
	name     string
	host     string // filters.MatchHost form; "" any
	wildcard bool   // host is "*.suffix": match by suffix (kept with its dot)
	path     filters.PathPrefix
	pool     *pool
	gate     *admission.Gate // nil: no concurrency limit
	capOn    bool
	capKey   string
	limiter  RouteLimiter // where the cap is counted
	limit    filters.Limit
	onError  OnError
	closed   ClosedResponse

	closedHits, capRejects, capErrors atomic.Uint64
	lastCapWarn                       atomic.Int64
}

func hostRank(r *route) int {
	switch {
	case r.host == "":
		return 2
	case r.wildcard:
		return 1
	}
	return 0
}

func withClosedDefaults(c ClosedResponse) ClosedResponse {
	if c.Status == 0 {
		c.Status = DefaultClosedStatus
	}
	if c.Body == "" {
		c.Body = DefaultClosedBody
	}
	if c.ContentType == "" {
		c.ContentType = "text/plain; charset=utf-8"
	}
	return c
}

func (f *Forwarder) buildRoute(rc Route) (*route, error) {
	poolName := rc.Upstream
	if poolName == "" {
		poolName = DefaultPool
	}
	spell := filters.AnySpelling
	if rc.StrictPath {
		spell = filters.StrictSpelling
	}
	rt := &route{
		name:   rc.RouteName(),
		host:   filters.MatchHost(rc.Host),
		path:   filters.NewPathPrefix(rc.prefix(), filters.SegmentEnd, spell),
		pool:   f.byPool[poolName],
		closed: withClosedDefaults(rc.Shield.Closed),
	}
	if strings.HasPrefix(rt.host, "*.") {
		rt.wildcard, rt.host = true, rt.host[1:]
	}
	s := rc.Shield
	if s.MaxInFlight > 0 {
		g, err := admission.New(s.MaxInFlight, s.Queue, orDur(s.QueueTimeout, DefaultQueueTimeout))
		if err != nil {
			return nil, fmt.Errorf("route %s: shield: %w", rt.name, err)
		}
		rt.gate = g
	}
	if !s.Cap.Rate.IsZero() {
		rt.capOn = true
		rt.capKey = "route:" + rt.name
		burst := s.Cap.Burst
		if burst == 0 {
			burst = int(min(s.Cap.Rate.Count, int64(math.MaxInt32)))
		}
		rt.limit = filters.Limit{Rate: s.Cap.Rate, Burst: int64(burst)}
		rt.onError = s.Cap.OnError
		if rt.onError == "" {
			rt.onError = OnErrorLocal
		}
		rt.limiter = f.local
		if s.Cap.Store.Fleet() {
			if f.limiter == nil {
				return nil, fmt.Errorf("%w: route %s: enable the quota stage with store: redis, or set the cap's store: memory to cap each node on its own", ErrNoFleetStore, rt.name)
			}
			rt.limiter = f.limiter
		}
	}
	return rt, nil
}

// ErrAmbiguousPath is Route's answer for a path whose normal form and raw
// form take different routes.
var ErrAmbiguousPath = errors.New("forward: ambiguous request path")

// Route returns the name of the route r takes, or "" for the default route
// (the upstream shorthand), so the owner can pick per-route stage settings
// before the chain runs and put the name in filters.Request.Route.
//
// The path is matched in its normal form (filters.MatchPath), as most
// backends serve it: "/checkout;jsessionid=1" takes the /checkout route.
// Unless a route sets strict_path, it also takes the spellings of its path
// that common backends serve as the same resource (filters.PathPrefix):
// "/CHECKOUT", "/checkout.json", "/checkout%20". A
// path whose raw form ("//checkout", "/static/../checkout",
// "/admin/..%2Fupload") would take another route than its normal form is
// refused with ErrAmbiguousPath: a backend that normalises serves it as
// one route and one that does not as the other, so neither route's shield
// or stage settings could be trusted to apply.
func (f *Forwarder) Route(r *http.Request) (string, error) {
	rt, err := f.route(r)
	if rt == nil {
		return "", err
	}
	return rt.name, err
}

func (f *Forwarder) route(r *http.Request) (*route, error) {
	host := filters.MatchHost(r.Host)
	clean := filters.MatchPath(r.URL.Path)
	rt := f.lookup(host, clean)
	if raw := rawForm(r.URL); raw != clean && strings.HasPrefix(raw, "/") && f.lookup(host, raw) != rt {
		return rt, ErrAmbiguousPath
	}
	return rt, nil
}

// rawForm is the path as a backend that resolves nothing would route it:
// as sent (decoded, unless the client escaped something, such as a "/",
// that decoding would change), less the path parameters that even such
// backends ignore.
func rawForm(u *url.URL) string {
	p := u.Path
	if u.RawPath != "" {
		p = u.RawPath
	}
	return filters.StripPathParams(p)
}

func (f *Forwarder) lookup(host, p string) *route {
	for _, rt := range f.routes {
		if rt.matchHost(host) && rt.path.Covers(p) {
			return rt
		}
	}
	return f.def
}

// matchHost reports whether host (in filters.MatchHost form) is r's.
func (r *route) matchHost(host string) bool {
	switch {
	case r.host == "":
		return true
	case r.wildcard:
		return len(host) > len(r.host) && strings.HasSuffix(host, r.host)
	}
	return host == r.host
}
