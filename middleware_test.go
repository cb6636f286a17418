package edgeguard

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/volumetric"
)

// TestMiddlewareOnlyConfig: a Config built in code with only a stage and
// no listen, admin or log keys builds a Guard that works as middleware.
func TestMiddlewareOnlyConfig(t *testing.T) {
	rate, err := filters.ParseRate("1/m")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Stages:     []string{"volumetric"},
		Volumetric: volumetric.Config{Rate: rate, Burst: 1},
	}
	g, err := New(cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("New with a middleware-only config: %v", err)
	}
	defer g.Close()
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	if w := do(h, "192.0.2.1:1000", nil); w.Code != http.StatusNoContent {
		t.Fatalf("first request: %d, want 204", w.Code)
	}
	if w := do(h, "192.0.2.1:1001", nil); w.Code != http.StatusTooManyRequests {
		t.Fatalf("second request: %d, want 429 from the volumetric stage", w.Code)
	}
}

// TestConfigWithoutStagesRefused: a Config built in code that names no
// stages is refused, not run as an empty chain that lets everything by.
func TestConfigWithoutStagesRefused(t *testing.T) {
	_, err := New(&config.Config{}, WithLogger(slog.New(slog.DiscardHandler)))
	if err == nil || !strings.Contains(err.Error(), "stages: not set") {
		t.Fatalf("New(&config.Config{}) = %v, want the stages error", err)
	}
}

// TestEdgeKeysCheckedOnlyForTheBinary: bad listen, admin and log values
// are the binary's concern: Validate passes them, ValidateEdge (and Parse)
// report each.
func TestEdgeKeysCheckedOnlyForTheBinary(t *testing.T) {
	cfg := &config.Config{Stages: []string{}, Listen: "nowhere", Admin: config.Admin{Listen: "0.0.0.0:9090"},
		Log: config.Log{Level: "loud", Format: "xml"}, TLS: config.TLS{Cert: "c.pem"}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v, want nil (edge keys are not the middleware's)", err)
	}
	err := cfg.ValidateEdge()
	for _, f := range []string{"listen", "tls", "admin.listen", "log.level", "log.format"} {
		if !hasField(filters.FieldErrors(err), f) {
			t.Errorf("ValidateEdge: no problem for %s in %v", f, err)
		}
	}
	if _, err := config.Parse("edge.yaml", []byte("stages: []\nlog: {level: loud}\n")); err == nil || !strings.Contains(err.Error(), "edge.yaml:2: log.level") {
		t.Errorf("Parse with a bad log level: %v, want edge.yaml:2: log.level", err)
	}
}

func hasField(fes []*filters.FieldError, field string) bool {
	for _, fe := range fes {
		if fe.Field == field {
			return true
		}
	}
	return false
}

// TestRemoteAddrForms: RemoteAddr as net/http sets it, and without a port
// as some servers leave it, are both the client; garbage is refused.
func TestRemoteAddrForms(t *testing.T) {
	g := mustGuard(t, "stages: []\n")
	for _, tt := range []struct {
		remote string
		code   int
		client string
	}{
		{"192.0.2.7:4000", 200, "192.0.2.7"},
		{"192.0.2.7", 200, "192.0.2.7"},
		{"[2001:db8::7]:4000", 200, "2001:db8::7"},
		{"2001:db8::7", 200, "2001:db8::7"},
		{"[2001:db8::7]", 200, "2001:db8::7"},
		{"::ffff:192.0.2.7", 200, "192.0.2.7"},
		{"", 500, ""},
		{"host.example:80", 500, ""},
	} {
		var got string
		h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("X-Real-Ip") }))
		w := do(h, tt.remote, nil)
		if w.Code != tt.code || got != tt.client {
			t.Errorf("RemoteAddr %q: %d, client %q; want %d, %q", tt.remote, w.Code, got, tt.code, tt.client)
		}
	}
}

// TestMetricsWithoutActivate: a Guard built without WithMetrics reports
// its stages' samples with no further call.
func TestMetricsWithoutActivate(t *testing.T) {
	g := mustGuard(t, "stages: [volumetric]\nvolumetric: {rate: 1/m, burst: 1}\n")
	do(g.Wrap(http.NotFoundHandler()), "192.0.2.44:1000", nil)
	w := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
	if want := `edgeguard_volumetric_clients 1`; !strings.Contains(w.Body.String(), want) {
		t.Errorf("/metrics lacks %q without Activate:\n%s", want, w.Body.String())
	}
}

// TestDefaultConfigIsTheDemos: DefaultConfig runs the stages of `edgeguard
// demo`, with the same settings, and builds.
func TestDefaultConfigIsTheDemos(t *testing.T) {
	demo, err := os.ReadFile("cmd/edgeguard/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("{{listen}}", "127.0.0.1:1", "{{admin}}", "127.0.0.1:2", "{{upstream}}", "http://127.0.0.1:3")
	want := mustConfig(t, r.Replace(string(demo)))
	got := DefaultConfig()
	if !reflect.DeepEqual(got.Stages, want.Stages) || !reflect.DeepEqual(got.Reputation, want.Reputation) ||
		!reflect.DeepEqual(got.Volumetric, want.Volumetric) || !reflect.DeepEqual(got.WAF, want.WAF) ||
		!reflect.DeepEqual(got.Quota, want.Quota) {
		t.Errorf("DefaultConfig differs from demo.yaml's stages:\n got %+v\nwant %+v", got, want)
	}
	if got.Forward.Upstream != "" {
		t.Errorf("DefaultConfig names an upstream: %q", got.Forward.Upstream)
	}
	if DefaultConfig() == got {
		t.Error("DefaultConfig returned the same config twice")
	}
	g, err := New(got, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
}
