package edgeguard

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
)

func mustConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return cfg
}

func mustGuard(t testing.TB, yaml string) *Guard {
	t.Helper()
	g, err := New(mustConfig(t, yaml), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func do(h http.Handler, remote string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "http://example.test/path?q=1", nil)
	r.RemoteAddr = remote
	for k, vs := range header {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestWrapDeny: a deny answers with the stage's status, a Retry-After of
// whole seconds, and a body naming the request id and the stage, never the
// reason; what passes reaches the wrapped handler.
func TestWrapDeny(t *testing.T) {
	g := mustGuard(t, "stages: [volumetric]\nvolumetric: {rate: 1/m, burst: 2}\n")
	reached := 0
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.Write([]byte("upstream"))
	}))
	for i := range 2 {
		if w := do(h, "192.0.2.1:1000", nil); w.Code != 200 || w.Body.String() != "upstream" {
			t.Fatalf("request %d: %d %q", i, w.Code, w.Body.String())
		}
	}
	w := do(h, "192.0.2.1:1000", nil)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("third request: %d, want 429", w.Code)
	}
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	id := w.Header().Get("X-Request-Id")
	if id == "" || !strings.Contains(w.Body.String(), id) || !strings.Contains(w.Body.String(), "volumetric") {
		t.Errorf("deny body %q does not name request id %q and the stage", w.Body.String(), id)
	}
	if strings.Contains(w.Body.String(), "rate") {
		t.Errorf("deny body leaks the reason: %q", w.Body.String())
	}
	if reached != 2 {
		t.Errorf("wrapped handler reached %d times, want 2", reached)
	}
	// Another client is not affected.
	if w := do(h, "192.0.2.2:1000", nil); w.Code != 200 {
		t.Errorf("other client: %d", w.Code)
	}
}

// TestShadowAllows: a stage in shadow mode lets the request through.
func TestShadowAllows(t *testing.T) {
	g := mustGuard(t, "stages: [volumetric]\nvolumetric: {mode: shadow, rate: 1/m, burst: 1}\n")
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i := range 3 {
		if w := do(h, "192.0.2.1:1000", nil); w.Code != 200 {
			t.Fatalf("request %d in shadow mode: %d", i, w.Code)
		}
	}
}

// TestRequestID: made up unless a trusted proxy sent one; a client's own
// is replaced.
func TestRequestID(t *testing.T) {
	g := mustGuard(t, "stages: []\nclient_ip: {trusted_proxies: [10.0.0.0/8]}\n")
	var got string
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = w.Header().Get("X-Request-Id") }))
	mine := http.Header{"X-Request-Id": {"chosen-by-client"}}
	do(h, "192.0.2.1:1000", mine)
	if got == "" || got == "chosen-by-client" {
		t.Errorf("untrusted peer's request id kept: %q", got)
	}
	do(h, "10.1.1.1:1000", http.Header{"X-Request-Id": {"lb-7"}})
	if got != "lb-7" {
		t.Errorf("trusted proxy's request id not kept: %q", got)
	}
}

// TestTooManyHops: a forwarding header beyond the bound is refused with 431.
func TestTooManyHops(t *testing.T) {
	g := mustGuard(t, "stages: []\nclient_ip: {trusted_proxies: [10.0.0.0/8], max_hops: 4}\n")
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	xff := strings.Repeat("10.0.0.1, ", 20) + "10.0.0.1"
	if w := do(h, "10.0.0.2:1", http.Header{"X-Forwarded-For": {xff}}); w.Code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", w.Code)
	}
}

// BenchmarkForward compares a bare httputil.ReverseProxy with the Guard
// (empty chain: client-IP resolution, request id, access bookkeeping, the
// forwarder) over the same loopback upstream, in the same run.
func BenchmarkForward(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	bare := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.SetXForwarded()
	}}
	g := mustGuard(b, "stages: []\nupstream: "+up.URL+"\nlog: {access: false}\n")
	// The cheap path as the binary runs it: reputation, volumetric and a
	// memory quota with limits far above the load, the access line written
	// (as JSON, to nowhere) and metrics on.
	cheap, err := New(mustConfig(b, "upstream: "+up.URL+`
stages: [reputation, volumetric, quota]
volumetric: {rate: "1000000000/s", burst: 1000000000}
quota: {store: memory, key: [ip], policies: [{name: p, rate: "1000000000/s", burst: 1000000000}]}
`), WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	defer cheap.Close()
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare-reverseproxy", bare}, {"forwarder-alone", g.forward}, {"guard-empty-chain", g}, {"guard-cheap-stages", cheap}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", "http://example.test/", nil)
				r.RemoteAddr = "192.0.2.1:1000"
				w := httptest.NewRecorder()
				bc.h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
				io.Copy(io.Discard, bytes.NewReader(w.Body.Bytes()))
			}
		})
	}
}

// BenchmarkGuardOverhead is the Guard's own cost per request with an empty
// chain (resolution, request id, bookkeeping) in front of a handler that
// does nothing; set beside BenchmarkForward/bare-reverseproxy of the same
// run it gives the share an empty chain adds to a proxied request.
func BenchmarkGuardOverhead(b *testing.B) {
	g := mustGuard(b, "stages: []\nlog: {access: false}\nclient_ip: {trusted_proxies: [10.0.0.0/8]}\n")
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	r := httptest.NewRequest("GET", "http://example.test/", nil)
	r.RemoteAddr = "10.0.0.1:1000"
	xff := []string{"203.0.113.7, 10.0.0.9"}
	w := &statusWriter{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		// Wrap rewrites the client-IP headers of the request it passes on;
		// each iteration starts from what the client sent.
		r.Header["X-Forwarded-For"] = xff
		w.reset()
		h.ServeHTTP(w, r)
		// Each request's own status: a refusal by the chain would not be
		// the handler's 204.
		if w.status != http.StatusNoContent {
			b.Fatalf("status %d, want the handler's 204", w.status)
		}
	}
}

// statusWriter is a ResponseWriter a benchmark can reuse: unlike
// httptest.ResponseRecorder, which keeps the first status it was given, it
// records each request's status.
type statusWriter struct {
	header http.Header
	status int
}

func (w *statusWriter) Header() http.Header { return w.header }
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *statusWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
func (w *statusWriter) reset() {
	clear(w.header)
	w.status = 0
}

// TestRouteStagesChain: a route with its own volumetric settings is
// limited by them; other routes by the shared stage.
func TestRouteStagesChain(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	g := mustGuard(t, `upstream: `+up.URL+`
routes:
  - {path: /login, upstream: default}
stages: [volumetric]
volumetric: {rate: 100/s, burst: 100}
route_stages:
  /login: {volumetric: {rate: 1/m, burst: 2}}
`)
	status := func(path string) int {
		r := httptest.NewRequest("GET", "http://example.test"+path, nil)
		r.RemoteAddr = "192.0.2.1:1000"
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w.Code
	}
	var got []int
	for range 3 {
		got = append(got, status("/login"))
	}
	if got[0] != 200 || got[1] != 200 || got[2] != 429 {
		t.Fatalf("/login statuses %v, want 200 200 429 (its own burst of 2)", got)
	}
	for i := range 10 {
		if s := status("/home"); s != 200 {
			t.Fatalf("/home request %d: %d (shared stage, burst 100)", i, s)
		}
	}
}

// TestClientHeadersForTheApp: what the wrapped handler reads in the
// client-IP headers is the resolved client, never the client's claim.
func TestClientHeadersForTheApp(t *testing.T) {
	g := mustGuard(t, "stages: []\nclient_ip: {trusted_proxies: [10.0.0.0/8], header: CF-Connecting-IP}\n")
	var got http.Header
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	do(h, "192.0.2.9:1000", http.Header{"Cf-Connecting-Ip": {"127.0.0.1"}, "X-Real-Ip": {"127.0.0.1"}, "X-Forwarded-For": {"127.0.0.1"},
		"X-Client-Ip": {"127.0.0.1"}, "True-Client-Ip": {"127.0.0.1"}, "Forwarded": {"for=127.0.0.1"}})
	for _, name := range []string{"Cf-Connecting-Ip", "X-Real-Ip", "X-Forwarded-For"} {
		if v := got.Get(name); v != "192.0.2.9" {
			t.Errorf("%s reached the app as %q, want the resolved 192.0.2.9", name, v)
		}
	}
	for _, name := range []string{"X-Client-Ip", "True-Client-Ip", "Forwarded"} {
		if v := got.Get(name); v != "" {
			t.Errorf("the client's %s reached the app: %q", name, v)
		}
	}
	do(h, "10.0.0.1:1000", http.Header{"Cf-Connecting-Ip": {"203.0.113.5"}})
	if v := got.Get("X-Real-Ip"); v != "203.0.113.5" {
		t.Errorf("behind a trusted proxy X-Real-Ip = %q, want 203.0.113.5", v)
	}
}

func TestNoStartAddressIs500(t *testing.T) {
	g := mustGuard(t, "stages: []\n")
	h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("reached the app") }))
	if w := do(h, "@", nil); w.Code != http.StatusInternalServerError {
		t.Fatalf("no start address: %d, want 500", w.Code)
	}
}

func TestWriteDenyStatuses(t *testing.T) {
	tests := []struct {
		status   int
		location string
		want     int
	}{
		{0, "", 403}, {429, "", 429}, {413, "", 413}, {1000, "", 403}, {200, "", 403},
		{302, "https://example.test/blocked", 302}, {302, "", 403}, {99, "", 403},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		if tt.location != "" {
			w.Header().Set("Location", tt.location)
		}
		writeDeny(w, &filters.Request{ID: "r1"}, filters.Verdict{Deny: true, Status: tt.status, Stage: "waf"})
		if w.Code != tt.want {
			t.Errorf("status %d (location %q) answered %d, want %d", tt.status, tt.location, w.Code, tt.want)
		}
	}
}

// TestDrainWaitsForInflight: Drain returns when the last request in flight
// leaves, not before and not at its timeout. The clock is synctest's: Drain
// polls on it, and "not before" is checked after every goroutine is blocked.
func TestDrainWaitsForInflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGuard(t, "stages: []\n")
		release := make(chan struct{})
		entered := make(chan struct{})
		h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(entered); <-release }))
		go do(h, "192.0.2.1:1", nil)
		<-entered
		drained := make(chan struct{})
		start := time.Now()
		go func() { g.Drain(10 * time.Second); close(drained) }()
		// Requests that loaded this Guard just before a swap still start while
		// Drain waits; that must neither panic nor end the wait early.
		quick := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		for range 50 {
			do(quick, "192.0.2.2:1", nil)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		select {
		case <-drained:
			t.Fatal("Drain returned with a request in flight")
		default:
		}
		close(release)
		<-drained
		if waited := time.Since(start); waited >= 10*time.Second {
			t.Fatalf("Drain returned after %v: at its timeout, not when the request finished", waited)
		}
	})
}

// TestAmbiguousPathIs400: a path whose raw and normal forms take different
// routes is refused before any stage runs.
func TestAmbiguousPathIs400(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	g := mustGuard(t, "upstream: "+up.URL+"\nroutes: [{path: /checkout, upstream: default}, {path: /, upstream: default}]\nstages: []\n")
	for p, want := range map[string]int{"/checkout/pay": 200, "/home": 200, "//checkout": 400, "/a/../checkout": 400} {
		r := httptest.NewRequest("GET", "http://example.test/", nil)
		r.URL.Path = p
		r.RemoteAddr = "192.0.2.1:1000"
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("%s: %d, want %d", p, w.Code, want)
		}
	}
}
