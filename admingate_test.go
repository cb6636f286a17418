package edgeguard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/config"
)

// adminRequest is a request as an operator's tool sends it to the default
// admin address: Host is the loopback address, no Origin.
func adminRequest(method, target string, body io.Reader) *http.Request {
	r := httptest.NewRequest(method, target, body)
	r.Host = "127.0.0.1:9090"
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

const adminYAML = `upstream: http://127.0.0.1:9
routes:
  - {name: checkout, path: /checkout, upstream: default}
  - {path: /, upstream: default}
stages: [reputation]
`

// TestAdminAPIThroughServer calls every documented admin endpoint the way a
// user does, over a real listener and its Host, following no redirects:
// each answers itself (GET /v1/routes was a 307 to a 404).
func TestAdminAPIThroughServer(t *testing.T) {
	g := mustGuard(t, adminYAML)
	srv := httptest.NewServer(g.AdminHandler())
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	steps := []struct {
		method, path, body string
		want               int
		has                string // in the body
	}{
		{"GET", "/healthz", "", 200, "ok"},
		{"GET", "/readyz", "", 200, "ready"},
		{"GET", "/metrics", "", 200, "edgeguard_"},
		{"GET", "/v1/bans", "", 200, `"bans":[]`},
		{"POST", "/v1/bans", `{"target": "192.0.2.7", "ttl": "1h"}`, 201, `"target":"192.0.2.7"`},
		{"GET", "/v1/bans", "", 200, `"target":"192.0.2.7"`},
		{"DELETE", "/v1/bans/192.0.2.7", "", 200, `"target":"192.0.2.7"`},
		{"DELETE", "/v1/bans/192.0.2.7", "", 404, "no ban"},
		{"GET", "/v1/upstreams", "", 200, `"upstreams"`},
		{"GET", "/v1/routes", "", 200, `"name": "checkout"`},
		{"GET", "/v1/routes/", "", 404, ""},
		{"POST", "/v1/routes/checkout/closed", "", 200, `"closed": true`},
		{"GET", "/v1/routes", "", 200, `"closed": true`},
		{"DELETE", "/v1/routes/checkout/closed", "", 200, `"closed": false`},
		{"POST", "/v1/routes/nosuch/closed", "", 404, "no route"},
	}
	for _, s := range steps {
		var body io.Reader
		if s.body != "" {
			body = strings.NewReader(s.body)
		}
		req, _ := http.NewRequest(s.method, srv.URL+s.path, body)
		if s.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.want || !strings.Contains(string(got), s.has) {
			t.Errorf("%s %s: %d %.200s, want %d with %q", s.method, s.path, resp.StatusCode, got, s.want, s.has)
		}
	}
}

// TestAdminRefusesBrowsers: DNS rebinding (a foreign Host), cross-site
// browser requests (Origin, Sec-Fetch-Site) unless admin.allowed_origins
// lists them, and bodies that are not JSON are refused before any handler
// acts; a tool's requests pass.
func TestAdminRefusesBrowsers(t *testing.T) {
	const ban = `{"target": "192.0.2.7"}`
	tests := []struct {
		name, admin, method, path, host, body string
		header                                map[string]string
		want                                  int
	}{
		{"tool on loopback IP", "", "POST", "/v1/bans", "127.0.0.1:9090", ban, nil, 201},
		{"tool on localhost", "", "POST", "/v1/bans", "localhost:9090", ban, nil, 201},
		{"tool on a .localhost name", "", "GET", "/v1/bans", "edge.localhost", "", nil, 200},
		{"tool on IPv6 loopback", "", "GET", "/v1/bans", "[::1]:9090", "", nil, 200},
		{"no Host (HTTP/1.0)", "", "GET", "/v1/bans", "", "", nil, 200},
		{"rebinding: foreign name", "", "POST", "/v1/bans", "evil.example:9090", ban, nil, 421},
		{"rebinding: foreign name, GET", "", "GET", "/v1/bans", "evil.example", "", nil, 421},
		{"rebinding: localhost lookalike", "", "GET", "/healthz", "localhost.evil.example", "", nil, 421},
		{"foreign address", "", "GET", "/v1/bans", "192.0.2.1:9090", "", nil, 421},
		{"the configured name", "{listen: 'admin.internal:9090', token: t}", "GET", "/healthz", "admin.internal:9090", "", map[string]string{"Authorization": "Bearer t"}, 200},
		{"the configured address", "{listen: '10.1.2.3:9090', token: t}", "GET", "/healthz", "10.1.2.3:9090", "", map[string]string{"Authorization": "Bearer t"}, 200},
		{"any address when listening on all", "{listen: '0.0.0.0:9090', token: t}", "GET", "/healthz", "10.9.9.9:9090", "", map[string]string{"Authorization": "Bearer t"}, 200},
		{"any address when listening on ':port'", "{listen: ':9090', token: t}", "GET", "/healthz", "10.9.9.9:9090", "", map[string]string{"Authorization": "Bearer t"}, 200},
		{"a name when listening on all", "{listen: '0.0.0.0:9090', token: t}", "GET", "/healthz", "evil.example:9090", "", map[string]string{"Authorization": "Bearer t"}, 421},
		{"cross-site form", "", "POST", "/v1/bans", "127.0.0.1:9090", ban, map[string]string{"Origin": "http://evil.example"}, 403},
		{"cross-site body-less POST", "", "POST", "/v1/routes/checkout/closed", "127.0.0.1:9090", "", map[string]string{"Origin": "http://evil.example"}, 403},
		{"opaque origin", "", "GET", "/v1/bans", "127.0.0.1:9090", "", map[string]string{"Origin": "null"}, 403},
		{"same-host page, not listed", "", "GET", "/v1/bans", "127.0.0.1:9090", "", map[string]string{"Origin": "http://127.0.0.1:9090"}, 403},
		{"cross-site without Origin", "", "GET", "/v1/bans", "127.0.0.1:9090", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-origin fetch metadata", "", "GET", "/v1/bans", "127.0.0.1:9090", "", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"listed origin", "{allowed_origins: ['https://console.example']}", "POST", "/v1/bans", "127.0.0.1:9090", ban, map[string]string{"Origin": "https://Console.example:443", "Sec-Fetch-Site": "cross-site"}, 201},
		{"listed origin, other port", "{allowed_origins: ['https://console.example']}", "POST", "/v1/bans", "127.0.0.1:9090", ban, map[string]string{"Origin": "https://console.example:8443"}, 403},
		{"text/plain body", "", "POST", "/v1/bans", "127.0.0.1:9090", ban, map[string]string{"Content-Type": "text/plain"}, 415},
		{"form body", "", "POST", "/v1/bans", "127.0.0.1:9090", ban, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"no content type", "", "POST", "/v1/bans", "127.0.0.1:9090", ban, map[string]string{"Content-Type": ""}, 415},
		{"json with charset", "", "POST", "/v1/bans", "127.0.0.1:9090", ban, map[string]string{"Content-Type": "application/json; charset=utf-8"}, 201},
		{"body-less POST from a tool", "", "POST", "/v1/routes/checkout/closed", "127.0.0.1:9090", "", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := adminYAML
			if tt.admin != "" {
				yaml += "admin: " + tt.admin + "\n"
			}
			h := mustGuard(t, yaml).AdminHandler()
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := adminRequest(tt.method, tt.path, body)
			r.Host = tt.host
			for k, v := range tt.header {
				if v == "" {
					r.Header.Del(k)
					continue
				}
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("%s %s Host %q %v: %d %s, want %d", tt.method, tt.path, tt.host, tt.header, w.Code, w.Body, tt.want)
			}
		})
	}
}

// TestAdminAllowedOriginsValidated: an origin list entry that is not
// scheme://host[:port] is a config error naming the entry.
func TestAdminAllowedOriginsValidated(t *testing.T) {
	for _, bad := range []string{"console.example", "https://console.example/", "https://console.example/ui", "null", "ftp://x", "https://user@x", "*"} {
		b, _ := json.Marshal(bad)
		_, err := configParse("stages: []\nadmin: {allowed_origins: [" + string(b) + "]}\n")
		if err == nil || !strings.Contains(err.Error(), "admin.allowed_origins[0]") {
			t.Errorf("allowed_origins [%q]: err = %v, want one naming admin.allowed_origins[0]", bad, err)
		}
	}
	if _, err := configParse("stages: []\nadmin: {allowed_origins: ['https://console.example:8443', 'http://[::1]:3000']}\n"); err != nil {
		t.Errorf("valid origins refused: %v", err)
	}
}

func configParse(yaml string) (*config.Config, error) { return config.Parse("test.yaml", []byte(yaml)) }
