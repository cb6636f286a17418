package edgeguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestServeAuth: each proxy's description of the original request is read
// from its own headers (or path), the chain judges that request, and the
// answer is 200 or the deny as that proxy can pass it on.
func TestServeAuth(t *testing.T) {
	g := mustGuard(t, `
client_ip: {trusted_proxies: [10.0.0.0/8]}
stages: [volumetric, waf]
volumetric: {rate: 1/m, burst: 1}
waf: {mode: block}
`)
	const sqli = "/items?id=1%27%20UNION%20SELECT%20password%20FROM%20users--"
	for _, tt := range []struct {
		name   string
		method string
		target string
		peer   string
		header map[string]string
		code   int
		status string // AuthStatusHeader
	}{
		{"nginx benign", "GET", "/nginx", "10.0.0.1:1", map[string]string{"X-Original-Method": "GET", "X-Original-Uri": "/items?id=7", "X-Forwarded-For": "192.0.2.1"}, 200, ""},
		{"nginx sqli", "GET", "/nginx", "10.0.0.1:1", map[string]string{"X-Original-Method": "GET", "X-Original-Uri": sqli, "X-Forwarded-For": "192.0.2.2"}, 403, "403"},
		{"nginx flood is a 403 naming 429", "GET", "/nginx", "10.0.0.1:1", map[string]string{"X-Original-Method": "GET", "X-Original-Uri": "/", "X-Forwarded-For": "192.0.2.1"}, 403, "429"},
		{"traefik benign", "GET", "/traefik", "10.0.0.2:1", map[string]string{"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/cart", "X-Forwarded-Host": "shop.example", "X-Forwarded-For": "192.0.2.3"}, 200, ""},
		{"traefik sqli", "GET", "/traefik", "10.0.0.2:1", map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": sqli, "X-Forwarded-For": "192.0.2.4"}, 403, ""},
		{"traefik flood keeps 429", "GET", "/traefik", "10.0.0.2:1", map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/", "X-Forwarded-For": "192.0.2.3"}, 429, ""},
		{"envoy benign", "POST", "/envoy/cart/7?x=1", "10.0.0.3:1", map[string]string{"X-Forwarded-For": "192.0.2.5"}, 200, ""},
		{"envoy sqli", "GET", "/envoy" + sqli, "10.0.0.3:1", map[string]string{"X-Forwarded-For": "192.0.2.6"}, 403, ""},
		{"untrusted peer", "GET", "/nginx", "192.0.2.9:1", map[string]string{"X-Original-Method": "GET", "X-Original-Uri": "/"}, 403, ""},
		{"no method", "GET", "/nginx", "10.0.0.1:1", map[string]string{"X-Original-Uri": "/"}, 400, ""},
		{"bad method", "GET", "/traefik", "10.0.0.1:1", map[string]string{"X-Forwarded-Method": "GE T", "X-Forwarded-Uri": "/"}, 400, ""},
		{"uri not a path", "GET", "/nginx", "10.0.0.1:1", map[string]string{"X-Original-Method": "GET", "X-Original-Uri": "http://evil/"}, 400, ""},
		{"unknown proxy", "GET", "/haproxy", "10.0.0.1:1", nil, 404, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.RemoteAddr = tt.peer
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			g.ServeAuth(w, r)
			if w.Code != tt.code || w.Header().Get(AuthStatusHeader) != tt.status {
				t.Fatalf("%d %s=%q, want %d %q; body %q", w.Code, AuthStatusHeader, w.Header().Get(AuthStatusHeader), tt.code, tt.status, w.Body)
			}
			if tt.code == 429 && w.Header().Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			if tt.code == 200 && w.Body.Len() != 0 {
				t.Errorf("allow with a body: %q", w.Body)
			}
		})
	}
}

// TestAuthOriginalRequest: the rebuilt request carries the original
// method, URI and host, no body, and not the headers that described it.
func TestAuthOriginalRequest(t *testing.T) {
	r := httptest.NewRequest("GET", "/traefik", strings.NewReader("ignored"))
	r.Header.Set("X-Forwarded-Method", "PUT")
	r.Header.Set("X-Forwarded-Uri", "/a/b?c=d")
	r.Header.Set("X-Forwarded-Host", "shop.example")
	r.Header.Set("User-Agent", "curl/8")
	orig, err := originalRequest(r, "traefik", "")
	if err != nil {
		t.Fatal(err)
	}
	if orig.Method != "PUT" || orig.URL.Path != "/a/b" || orig.URL.RawQuery != "c=d" || orig.Host != "shop.example" ||
		orig.ContentLength != 0 || orig.Body != http.NoBody {
		t.Errorf("rebuilt %s %s host %s len %d", orig.Method, orig.URL, orig.Host, orig.ContentLength)
	}
	if orig.Header.Get("X-Forwarded-Uri") != "" || orig.Header.Get("X-Forwarded-Method") != "" || orig.Header.Get("User-Agent") != "curl/8" {
		t.Errorf("headers: %v", orig.Header)
	}
	if r.Header.Get("X-Forwarded-Uri") == "" {
		t.Error("the proxy's request was changed")
	}
}

// FuzzAuthOriginalRequest: whatever a proxy sends, the rebuilt request is
// refused with errAuthRequest or is a request net/http could have read:
// a token method, a path starting with "/", no body.
func FuzzAuthOriginalRequest(f *testing.F) {
	f.Add("nginx", "", "GET", "/items?id=7")
	f.Add("traefik", "", "POST", "/a/b?c=d")
	f.Add("envoy", "cart/7", "", "")
	f.Add("nginx", "", "GE T", "//evil")
	f.Add("traefik", "", "GET", "http://evil/")
	f.Fuzz(func(t *testing.T, proxy, rest, method, uri string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["X-Original-Method"] = []string{method}
		r.Header["X-Original-Uri"] = []string{uri}
		r.Header["X-Forwarded-Method"] = []string{method}
		r.Header["X-Forwarded-Uri"] = []string{uri}
		orig, err := originalRequest(r, proxy, rest)
		if err != nil {
			if !errors.Is(err, errAuthRequest) {
				t.Fatalf("error %v is not errAuthRequest", err)
			}
			return
		}
		if orig.Method == "" || strings.ContainsAny(orig.Method, " \t\r\n") || !strings.HasPrefix(orig.RequestURI, "/") ||
			orig.URL == nil || orig.Body != http.NoBody || orig.ContentLength != 0 {
			t.Fatalf("rebuilt %q %q from proxy %q", orig.Method, orig.RequestURI, proxy)
		}
	})
}

// TestUntrustedPeersLogSparingly: refused forward-auth peers are logged at
// the first refusal, then at most once per untrustedEvery with the count
// since the last line, so a flood of them cannot flood the log.
func TestUntrustedPeersLogSparingly(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	var u untrustedPeers
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	peer := netip.MustParseAddr("192.0.2.9")
	for _, step := range []struct {
		at      time.Duration
		refuse  int
		logged  bool
		refused int // in the line
	}{
		{0, 1, true, 1},
		{time.Second, 500, false, 0},
		{untrustedEvery - time.Millisecond, 1, false, 0},
		{untrustedEvery, 1, true, 502},
		{untrustedEvery + time.Second, 3, false, 0},
		{3 * untrustedEvery, 1, true, 4},
	} {
		out.Reset()
		for range step.refuse {
			u.refuse(log, peer, t0.Add(step.at))
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if !step.logged {
			if out.Len() != 0 {
				t.Errorf("at %v: logged %d lines, want none; the first: %s", step.at, len(lines), lines[0])
			}
			continue
		}
		var m map[string]any
		if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &m) != nil {
			t.Fatalf("at %v: want one JSON line, got %q", step.at, out.String())
		}
		if m["refused"] != float64(step.refused) || m["peer"] != "192.0.2.9" || m["level"] != "WARN" {
			t.Errorf("at %v: line %v, want refused=%d from 192.0.2.9 at WARN", step.at, m, step.refused)
		}
	}
}
