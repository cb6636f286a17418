package forward

import (
	"slices"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
)

func fieldsOf(err error) []string {
	var out []string
	for _, fe := range filters.FieldErrors(err) {
		out = append(out, fe.Field)
	}
	slices.Sort(out)
	return out
}

func TestValidate(t *testing.T) {
	web := Pool{Backends: []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082"}}
	tests := []struct {
		name string
		cfg  Config
		want []string // field paths, sorted
	}{
		{"shorthand only", Config{Upstream: "http://127.0.0.1:9000"}, nil},
		{"nothing to forward to", Config{}, []string{"upstream"}},
		{"shorthand without port", Config{Upstream: "http://backend"}, []string{"upstream"}},
		{"shorthand with path", Config{Upstream: "http://127.0.0.1:9000/api"}, []string{"upstream"}},
		{"shorthand bad scheme", Config{Upstream: "ftp://127.0.0.1:21"}, []string{"upstream"}},
		{"pools and routes", Config{
			Upstreams: map[string]Pool{"web": web},
			Routes:    []Route{{Name: "checkout", Path: "/checkout", Upstream: "web", Shield: Shield{MaxInFlight: 100, Queue: 200}}, {Path: "/", Upstream: "web"}},
		}, nil},
		{"bad backend names its index", Config{Upstreams: map[string]Pool{"web": {Backends: []string{"http://127.0.0.1:1", "127.0.0.1:2"}}}},
			[]string{"upstreams.web.backends[1]"}},
		{"duplicate backend", Config{Upstreams: map[string]Pool{"web": {Backends: []string{"http://127.0.0.1:1", "http://127.0.0.1:1"}}}},
			[]string{"upstreams.web.backends[1]"}},
		{"empty pool", Config{Upstreams: map[string]Pool{"web": {}}}, []string{"upstreams.web.backends"}},
		{"bad balance", Config{Upstreams: map[string]Pool{"web": {Backends: web.Backends, Balance: "random"}}}, []string{"upstreams.web.balance"}},
		{"check timeout not below interval", Config{Upstreams: map[string]Pool{"web": {Backends: web.Backends,
			HealthCheck: HealthCheck{Path: "/healthz", Interval: filters.Duration(1e9), Timeout: filters.Duration(2e9)}}}},
			[]string{"upstreams.web.health_check.timeout"}},
		{"check path relative", Config{Upstreams: map[string]Pool{"web": {Backends: web.Backends, HealthCheck: HealthCheck{Path: "healthz"}}}},
			[]string{"upstreams.web.health_check.path"}},
		{"max ejection below ejection", Config{Upstreams: map[string]Pool{"web": {Backends: web.Backends,
			Outlier: Outlier{Ejection: filters.Duration(10e9), MaxEjection: filters.Duration(1e9)}}}},
			[]string{"upstreams.web.outlier.max_ejection"}},
		{"weights of unknown backends, out of range, for another balance", Config{Upstreams: map[string]Pool{
			"web": {Backends: web.Backends, Weights: map[string]int{"http://127.0.0.1:9": 2}},
			"api": {Backends: web.Backends, Weights: map[string]int{web.Backends[0]: 1001}},
			"app": {Backends: web.Backends, Balance: LeastOutstanding, Weights: map[string]int{web.Backends[0]: 2}},
		}}, []string{"upstreams.api.weights", "upstreams.app.weights", "upstreams.web.weights"}},
		{"weights fine", Config{Upstreams: map[string]Pool{"web": {Backends: web.Backends, Weights: map[string]int{web.Backends[1]: 1000}}}}, nil},
		{"outlier statuses and percentages", Config{Upstreams: map[string]Pool{"web": {Backends: web.Backends,
			Outlier: Outlier{Statuses: []int{503, 429}, MaxEjectionPercent: ptr(101), PanicThreshold: ptr(-1)}}}},
			[]string{"upstreams.web.outlier.max_ejection_percent", "upstreams.web.outlier.panic_threshold", "upstreams.web.outlier.statuses[1]"}},
		{"outlier zero percentages", Config{Upstreams: map[string]Pool{"web": {Backends: web.Backends,
			Outlier: Outlier{Statuses: []int{500}, MaxEjectionPercent: ptr(0), PanicThreshold: ptr(0)}}}}, nil},
		{"route to unknown pool", Config{Upstreams: map[string]Pool{"web": web}, Routes: []Route{{Path: "/", Upstream: "api"}}},
			[]string{"routes[0].upstream"}},
		{"route without pool and no shorthand", Config{Upstreams: map[string]Pool{"web": web}, Routes: []Route{{Path: "/"}}},
			[]string{"routes[0].upstream"}},
		{"route path relative", Config{Upstream: "http://127.0.0.1:9000", Routes: []Route{{Path: "checkout"}}},
			[]string{"routes[0].path"}},
		{"duplicate route names", Config{Upstream: "http://127.0.0.1:9000", Routes: []Route{{Path: "/a"}, {Name: "/a", Path: "/b"}}},
			[]string{"routes[1].name"}},
		{"queue without max_in_flight", Config{Upstream: "http://127.0.0.1:9000", Routes: []Route{{Path: "/a", Shield: Shield{Queue: 5}}}},
			[]string{"routes[0].shield.queue"}},
		{"shield negatives and bad on_error", Config{Upstream: "http://127.0.0.1:9000", Routes: []Route{{Path: "/a",
			Shield: Shield{MaxInFlight: -1, Cap: Cap{Burst: -1, OnError: "panic"}, Closed: ClosedResponse{Status: 42}}}}},
			[]string{"routes[0].shield.cap.burst", "routes[0].shield.cap.on_error", "routes[0].shield.closed.status", "routes[0].shield.max_in_flight"}},
		{"shorthand and pool named default", Config{Upstream: "http://127.0.0.1:9000", Upstreams: map[string]Pool{"default": web}},
			[]string{"upstreams.default"}},
		{"switch redis address", Config{Upstream: "http://127.0.0.1:9000", ClosedSwitch: SwitchConfig{Redis: redisconf.Config{Addrs: []string{"nohost"}}}},
			[]string{"closed_switch.redis.addrs[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fieldsOf(tt.cfg.Validate())
			if !slices.Equal(got, tt.want) {
				t.Errorf("fields = %v, want %v (err: %v)", got, tt.want, tt.cfg.Validate())
			}
		})
	}
}

func TestMatch(t *testing.T) {
	cfg := Config{
		Upstream:  "http://127.0.0.1:9000",
		Upstreams: map[string]Pool{"web": {Backends: []string{"http://127.0.0.1:9001"}}},
		Routes: []Route{
			{Name: "checkout", Path: "/checkout", Upstream: "web"},
			{Name: "checkout-pay", Path: "/checkout/pay", Upstream: "web"},
			{Name: "shop-checkout", Host: "shop.example.com", Path: "/checkout", Upstream: "web"},
			{Name: "sub-api", Host: "*.example.com", Path: "/api/", Upstream: "web"},
			{Name: "api", Path: "/api/", Upstream: "web"},
			{Path: "/static", Upstream: "web"},
			{Name: "strict", Path: "/Strict", Upstream: "web", StrictPath: true},
		},
	}
	f := newForwarder(t, cfg, Env{})
	tests := []struct {
		host, path, want string
	}{
		{"example.org", "/checkout", "checkout"},
		{"example.org", "/checkout/", "checkout"},
		{"example.org", "/checkout/cart", "checkout"},
		{"example.org", "/checkouts", ""},
		{"example.org", "/checkout/pay", "checkout-pay"},
		{"example.org", "/checkout/pay/now", "checkout-pay"},
		{"example.org", "/checkout/payment", "checkout"},
		{"shop.example.com", "/checkout", "shop-checkout"},
		{"SHOP.Example.COM:8443", "/checkout/x", "shop-checkout"},
		{"shop.example.com.", "/checkout", "shop-checkout"},
		{"shop.example.com", "/checkout/pay", "checkout-pay"}, // longer prefix beats host
		{"a.example.com", "/api/v1", "sub-api"},
		{"example.com", "/api/v1", "api"}, // wildcard needs a subdomain
		{"[::1]:8080", "/api/v1", "api"},
		{"example.org", "/api", ""}, // "/api/" needs the slash
		{"example.org", "/static/app.js", "/static"},
		{"example.org", "/", ""},
		{"", "", ""},
		// Spellings backends serve as the same resource take the route.
		{"example.org", "/CHECKOUT", "checkout"},
		{"example.org", "/Checkout/x", "checkout"},
		{"example.org", "/checkout.json", "checkout"},
		{"example.org", "/checkout ", "checkout"},
		{"example.org", "/checkout\t/", "checkout"},
		{"example.org", "/Checkout/PAY.xml", "checkout-pay"},
		{"example.org", "/API/v1", "api"},
		{"example.org", "/checkouts.json", ""},
		// ... unless the route is strict.
		{"example.org", "/Strict/x", "strict"},
		{"example.org", "/strict", ""},
		{"example.org", "/Strict.json", ""},
		// Hosts in every spelling.
		{"2001:DB8::1", "/api/v1", "api"},
		{"Shop.Example.Com..", "/CHECKOUT", "shop-checkout"},
	}
	for _, tt := range tests {
		if got, err := routeOf(f, tt.host, tt.path, ""); got != tt.want || err != nil {
			t.Errorf("Route(%q, %q) = %q, %v; want %q", tt.host, tt.path, got, err, tt.want)
		}
	}
}

func TestNoDefaultRouteIs404(t *testing.T) {
	b := startBackend(t, "a", nil)
	f := newForwarder(t, Config{
		Upstreams: map[string]Pool{"web": {Backends: []string{b.url()}}},
		Routes:    []Route{{Name: "api", Path: "/api", Upstream: "web"}},
	}, Env{})
	if w := do(f, "GET", "/other", nil, clientReq("203.0.113.1")); w.Code != 404 {
		t.Fatalf("unrouted request: %d, want 404", w.Code)
	}
	if w := do(f, "GET", "/api/x", nil, clientReq("203.0.113.1")); w.Code != 200 {
		t.Fatalf("routed request: %d, want 200", w.Code)
	}
	if b.hits.Load() != 1 {
		t.Fatalf("backend hits %d, want 1", b.hits.Load())
	}
}

func TestRouteNameFromRequest(t *testing.T) {
	a := startBackend(t, "a", nil)
	b := startBackend(t, "b", nil)
	f := newForwarder(t, Config{
		Upstream:  a.url(),
		Upstreams: map[string]Pool{"other": {Backends: []string{b.url()}}},
		Routes:    []Route{{Name: "special", Path: "/special", Upstream: "other"}},
	}, Env{})
	// The owner matched before the chain and a stage (or the owner) set the
	// route: the forwarder follows filters.Request.Route.
	fr := clientReq("203.0.113.1")
	fr.Route = "special"
	w := do(f, "GET", "/elsewhere", nil, fr)
	if got := w.Header().Get("X-Backend"); got != "b" {
		t.Fatalf("backend %q, want b (route from the request)", got)
	}
	if !strings.Contains(do(f, "GET", "/elsewhere", nil, clientReq("203.0.113.1")).Body.String(), "from a") {
		t.Fatal("default route did not reach the shorthand pool")
	}
}

func ptr[T any](v T) *T { return &v }
