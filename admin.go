package edgeguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/reputation"
	"github.com/edgeguard/edgeguard/internal/activity"
	"github.com/edgeguard/edgeguard/internal/console"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler serves the admin API for g: /healthz, /readyz, /metrics,
// the ban routes of the reputation stage, the forwarder's routes and the
// activity recorder's JSON (/v1/activity/) and the console under /ui/.
// With a token configured, every request must carry it as a bearer token
// or a console session cookie (see internal/console).
func (g *Guard) AdminHandler() http.Handler {
	auth := console.NewAuth(g.cfg.Admin.Token, time.Now)
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, console.Handler(auth))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", g.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.metrics.Registry, promhttp.HandlerOpts{}))
	if g.reputation != nil {
		mux.Handle("/v1/bans", g.reputation.AdminHandler())
		mux.Handle("/v1/bans/", g.reputation.AdminHandler())
	} else {
		notYet := func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "the reputation stage is not in the chain: no bans to manage", http.StatusNotImplemented)
		}
		mux.HandleFunc("/v1/bans", notYet)
		mux.HandleFunc("/v1/bans/", notYet)
	}
	if g.forward != nil {
		fh := g.forward.AdminHandler()
		// Both patterns: "/v1/routes/" alone would answer GET /v1/routes
		// with a redirect to a path the forwarder does not serve.
		mux.Handle("/v1/upstreams", fh)
		mux.Handle("/v1/routes", fh)
		mux.Handle("/v1/routes/", fh)
	}
	mux.Handle("/v1/activity/", g.metrics.activity.Handler(activity.Sources{
		Reputation: g.reputationOf, ActiveConnections: g.metrics.ActiveConnections,
	}))
	if g.cfg.Admin.Pprof {
		mountPprof(mux)
	}
	return auth.Require(newAdminGate(g.cfg.Admin, auth).wrap(noStore(mux)))
}

// noStore marks every admin answer as one no cache may keep: bans, routes
// and activity are live state, and some of it names clients.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// mountPprof serves Go's profiler under /debug/pprof/. Index serves the
// named profiles (heap, goroutine, allocs, ...) below the prefix itself.
// (Importing net/http/pprof also registers these on http.DefaultServeMux,
// which edgeguard never serves.)
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

func (g *Guard) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var errs []error
	for _, s := range g.stages {
		if rr, ok := s.Filter.(filters.ReadinessReporter); ok {
			if err := rr.Readiness(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s%s: %w", s.Name(), forRoute(s.route), err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// reputationOf is a client's standing with the shared chain's reputation
// stage, for the activity recorder's client lists.
func (g *Guard) reputationOf(addr netip.Addr, now time.Time) activity.Reputation {
	if g.reputation == nil {
		return activity.Reputation{State: activity.StateNone}
	}
	st := g.reputation.StatusAt(now, addr)
	out := activity.Reputation{State: st.State.String()}
	switch st.State {
	case reputation.StatusBanned:
		out.Until, out.Source = st.Ban.Expires, st.Ban.Source
	case reputation.StatusAllowListed, reputation.StatusDenyListed:
		out.Source = "list"
	}
	return out
}
