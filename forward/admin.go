package forward

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"
)

// BackendStatus is one backend in GET /v1/upstreams.
type BackendStatus struct {
	URL          string    `json:"url"`
	Healthy      bool      `json:"healthy"`       // passes active checks (always true without them)
	Ejected      bool      `json:"ejected"`       // passively ejected right now
	EjectedUntil time.Time `json:"ejected_until"` // zero when not ejected
	Outstanding  int64     `json:"outstanding"`
	Requests     uint64    `json:"requests"`
	Failures     uint64    `json:"failures"`
	Ejections    uint64    `json:"ejections"`
}

// PoolStatus is one pool in GET /v1/upstreams.
type PoolStatus struct {
	Name      string          `json:"name"`
	Balance   string          `json:"balance"`
	Available int             `json:"available"` // backends a request may go to now
	Backends  []BackendStatus `json:"backends"`
}

// RouteStatus is one route in GET /v1/routes.
type RouteStatus struct {
	Name     string `json:"name"`
	Upstream string `json:"upstream"`
	Closed   bool   `json:"closed"`
	InFlight int    `json:"in_flight"`
	Queued   int    `json:"queued"`
	// MaxInFlight and QueueSize are the route's shield (0: none), so that
	// in_flight and queued can be read as fill.
	MaxInFlight int `json:"max_in_flight"`
	QueueSize   int `json:"queue_size"`
}

var balanceNames = [...]string{polRoundRobin: RoundRobin, polLeastOutstanding: LeastOutstanding, polConsistentHash: ConsistentHash}

// Upstreams reports every pool and backend as of now.
func (f *Forwarder) Upstreams() []PoolStatus {
	now := f.clock()
	out := make([]PoolStatus, 0, len(f.pools))
	for _, p := range f.pools {
		ps := PoolStatus{Name: p.name, Balance: balanceNames[p.policy]}
		for _, b := range p.backends {
			until := b.ejectedUntil.Load()
			bs := BackendStatus{
				URL: b.url.String(), Healthy: b.up.Load(), Ejected: now.UnixNano() < until,
				Outstanding: b.outstanding.Load(), Requests: b.requests.Load(),
				Failures: b.failures.Load(), Ejections: b.ejections.Load(),
			}
			if bs.Ejected {
				bs.EjectedUntil = time.Unix(0, until).UTC()
			}
			if b.available(now.UnixNano()) {
				ps.Available++
			}
			ps.Backends = append(ps.Backends, bs)
		}
		out = append(out, ps)
	}
	return out
}

// Routes reports every configured route.
func (f *Forwarder) Routes() []RouteStatus {
	out := make([]RouteStatus, 0, len(f.routes))
	for _, rt := range f.routes {
		rs := RouteStatus{Name: rt.name, Upstream: rt.pool.name, Closed: f.closed.isClosed(rt.name)}
		if rt.gate != nil {
			st := rt.gate.State()
			rs.InFlight, rs.Queued = st.InFlight, st.Queued
			rs.MaxInFlight, rs.QueueSize = rt.gate.Limit(), rt.gate.Room()
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b RouteStatus) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// ErrNoRoute is returned for a route name the config does not define.
var ErrNoRoute = errors.New("forward: no such route")

// SetClosed closes (or reopens) a route: on this node at once and, with a
// fleet-wide switch, on every node. When Redis fails the change still holds
// on this node, resyncs from Redis do not undo it, and it is written to
// Redis (so the fleet gets it) at the first resync that can; the error says
// the fleet did not get it yet.
func (f *Forwarder) SetClosed(ctx context.Context, name string, closed bool) error {
	if _, ok := f.byName[name]; !ok {
		return ErrNoRoute
	}
	f.closed.set(name, closed)
	if f.fleet != nil {
		if err := f.fleet.change(ctx, name, closed); err != nil {
			return err
		}
	}
	f.log.Info("route switched", "route", name, "closed", closed, "fleet", f.fleet != nil)
	return nil
}

// AdminHandler serves the forwarder's part of the admin API; the owner
// mounts it on the admin listener behind its authentication:
//
//	GET    /v1/upstreams             pools and backends with their state
//	GET    /v1/routes                routes, closed or open, queue state
//	POST   /v1/routes/{name}/closed  close a route (the sold-out switch)
//	DELETE /v1/routes/{name}/closed  reopen it
func (f *Forwarder) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/upstreams", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"upstreams": f.Upstreams()})
	})
	mux.HandleFunc("GET /v1/routes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"routes": f.Routes()})
	})
	toggle := func(closed bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			name := r.PathValue("name")
			err := f.SetClosed(r.Context(), name, closed)
			switch {
			case errors.Is(err, ErrNoRoute):
				writeJSON(w, http.StatusNotFound, map[string]any{"error": "no route named " + name})
			case err != nil:
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{
					"route": name, "closed": closed, "fleet": false,
					"error": "changed on this node only: " + err.Error(),
				})
			default:
				writeJSON(w, http.StatusOK, map[string]any{"route": name, "closed": closed, "fleet": f.fleet != nil})
			}
		}
	}
	mux.HandleFunc("POST /v1/routes/{name}/closed", toggle(true))
	mux.HandleFunc("DELETE /v1/routes/{name}/closed", toggle(false))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
