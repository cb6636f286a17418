package edgeguard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/internal/redistest"
)

func TestAdminToken(t *testing.T) {
	g := mustGuard(t, "stages: [reputation]\nadmin: {listen: \"0.0.0.0:9090\", token: s3cret}\n")
	h := g.AdminHandler()
	tests := []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/healthz", "", http.StatusUnauthorized},
		{"GET", "/healthz", "Bearer wrong", http.StatusUnauthorized},
		{"GET", "/healthz", "s3cret", http.StatusUnauthorized},
		{"GET", "/healthz", "Bearer s3cret", http.StatusOK},
		{"GET", "/metrics", "", http.StatusUnauthorized},
		{"GET", "/metrics", "Bearer s3cret", http.StatusOK},
		{"GET", "/v1/bans", "", http.StatusUnauthorized},
		{"GET", "/v1/bans", "Bearer s3cret", http.StatusOK},
		{"POST", "/v1/bans", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		r := adminRequest(tt.method, tt.path, strings.NewReader(`{"target":"192.0.2.1","ttl":"1h"}`))
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s %s with %q: %d, want %d", tt.method, tt.path, tt.auth, w.Code, tt.want)
		}
	}
}

func TestAdminWithoutReputation(t *testing.T) {
	g := mustGuard(t, "stages: []\n")
	for _, tt := range []struct {
		path string
		want int
	}{{"/healthz", 200}, {"/readyz", 200}, {"/v1/bans", http.StatusNotImplemented}} {
		w := httptest.NewRecorder()
		g.AdminHandler().ServeHTTP(w, adminRequest("GET", tt.path, nil))
		if w.Code != tt.want {
			t.Errorf("%s: %d, want %d", tt.path, w.Code, tt.want)
		}
	}
}

// TestMetricsExposeStagesAndRequests: /metrics carries the chain's
// counters and the stages' own samples, with no client address in them.
func TestMetricsExposeStagesAndRequests(t *testing.T) {
	g := mustGuard(t, "stages: [volumetric]\nvolumetric: {rate: 1/m, burst: 1}\n")
	g.Activate()
	h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	do(h, "192.0.2.44:1000", nil)
	do(h, "192.0.2.44:1000", nil)
	w := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(w, adminRequest("GET", "/metrics", nil))
	body := w.Body.String()
	for _, want := range []string{
		`edgeguard_requests_total{stage="forward",verdict="allow"} 1`,
		`edgeguard_requests_total{stage="volumetric",verdict="deny"} 1`,
		`edgeguard_client_ip_source_total{source="peer"} 2`,
		`edgeguard_stage_duration_seconds_count{stage="volumetric"} 2`,
		`edgeguard_volumetric_clients 1`, // one chain: no route label
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "192.0.2.44") {
		t.Error("/metrics exposes a client address")
	}
	// Series appear once something has happened to them, not before.
	for _, absent := range []string{`source="header"`, `source="proxy"`, `verdict="shadow_deny"`, `stage="client_ip"`} {
		if strings.Contains(body, absent) {
			t.Errorf("/metrics has a series for %s before any such request", absent)
		}
	}
}

// TestAdminPprof: /debug/pprof/ is there only with admin.pprof: true, and
// behind the token like every admin route.
func TestAdminPprof(t *testing.T) {
	for _, tt := range []struct {
		name, cfg, path, auth string
		want                  int
		body                  string
	}{
		{"off by default", "stages: []\n", "/debug/pprof/", "", http.StatusNotFound, ""},
		{"off by default, named profile", "stages: []\n", "/debug/pprof/heap", "", http.StatusNotFound, ""},
		{"off explicitly", "stages: []\nadmin: {pprof: false}\n", "/debug/pprof/", "", http.StatusNotFound, ""},
		{"on: index", "stages: []\nadmin: {pprof: true}\n", "/debug/pprof/", "", http.StatusOK, "goroutine"},
		{"on: named profile", "stages: []\nadmin: {pprof: true}\n", "/debug/pprof/goroutine?debug=1", "", http.StatusOK, "goroutine profile:"},
		{"on: cmdline", "stages: []\nadmin: {pprof: true}\n", "/debug/pprof/cmdline", "", http.StatusOK, ""},
		{"on, token: none given", "stages: []\nadmin: {pprof: true, token: s3cret}\n", "/debug/pprof/", "", http.StatusUnauthorized, ""},
		{"on, token: given", "stages: []\nadmin: {pprof: true, token: s3cret}\n", "/debug/pprof/", "Bearer s3cret", http.StatusOK, "goroutine"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := mustGuard(t, tt.cfg).AdminHandler()
			r := adminRequest("GET", tt.path, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("GET %s: %d, want %d", tt.path, w.Code, tt.want)
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("GET %s: body lacks %q:\n%.300s", tt.path, tt.body, w.Body.String())
			}
		})
	}
}

// TestReadyzFollowsEachQuotaOnError: with Redis down, /readyz fails exactly
// when some quota instance, a route's included, has on_error: deny; local
// and allow serve on without Redis and keep the node in the balancer.
func TestReadyzFollowsEachQuotaOnError(t *testing.T) {
	srv := redistest.Start(t)
	yaml := func(top, route string) string {
		s := `upstream: http://127.0.0.1:9
routes:
  - {path: /api, upstream: default}
  - {path: /, upstream: default}
stages: [quota]
quota:
  store: redis
  redis: {addrs: ["` + srv.Addr + `"], timeout: 50ms}
  on_error: ` + top + `
  policies: [{name: p, rate: 10/s}]
`
		if route != "" {
			s += "route_stages:\n  /api: {quota: {on_error: " + route + "}}\n"
		}
		return s
	}
	tests := []struct {
		name, top, route string
		wantDown         int // /readyz with Redis down
	}{
		{"local everywhere", "local", "", http.StatusOK},
		{"allow everywhere", "allow", "", http.StatusOK},
		{"top-level deny", "deny", "", http.StatusServiceUnavailable},
		{"only a route's quota denies", "local", "deny", http.StatusServiceUnavailable},
		{"a route's local does not hide the top-level deny", "deny", "local", http.StatusServiceUnavailable},
		{"a route's allow over a top-level local", "local", "allow", http.StatusOK},
	}
	guards := make([]*Guard, len(tests))
	readyz := func(g *Guard) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		g.AdminHandler().ServeHTTP(w, adminRequest("GET", "/readyz", nil))
		return w
	}
	for i, tt := range tests {
		guards[i] = mustGuard(t, yaml(tt.top, tt.route))
		if w := readyz(guards[i]); w.Code != http.StatusOK {
			t.Fatalf("%s: /readyz with Redis up: %d %s", tt.name, w.Code, w.Body)
		}
	}
	srv.Stop()
	for i, tt := range tests {
		w := readyz(guards[i])
		if w.Code != tt.wantDown {
			t.Errorf("%s: /readyz with Redis down: %d %q, want %d", tt.name, w.Code, w.Body, tt.wantDown)
		}
		if tt.route == "deny" && !strings.Contains(w.Body.String(), "quota for route /api:") {
			t.Errorf("%s: /readyz does not name the route: %q", tt.name, w.Body)
		}
	}
}

// TestAdminAnswersAreNotStored: the console's data (bans, routes, activity)
// is live and names clients: no cache may keep it, nor sniff its type.
func TestAdminAnswersAreNotStored(t *testing.T) {
	h := mustGuard(t, adminYAML).AdminHandler()
	for _, path := range []string{"/v1/bans", "/v1/routes", "/v1/upstreams", "/v1/activity/overview", "/v1/activity/clients", "/v1/activity/waf", "/metrics", "/ui/"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, adminRequest("GET", path, nil))
		if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d, Cache-Control %q, X-Content-Type-Options %q; want 200, no-store, nosniff",
				path, w.Code, w.Header().Get("Cache-Control"), w.Header().Get("X-Content-Type-Options"))
		}
	}
}
