package edgeguard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/internal/console"
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
		// The console and its data sit behind the same gate as the rest.
		{"console page, typed in", "", "GET", "/ui/", "127.0.0.1:9090", "", map[string]string{"Sec-Fetch-Site": "none"}, 200},
		{"rebinding: console page", "", "GET", "/ui/", "evil.example:9090", "", map[string]string{"Sec-Fetch-Site": "none"}, 421},
		{"rebinding: console script", "", "GET", "/ui/static/console.js", "evil.example", "", nil, 421},
		{"rebinding: activity", "", "GET", "/v1/activity/overview", "evil.example:9090", "", nil, 421},
		{"activity from a tool", "", "GET", "/v1/activity/clients", "127.0.0.1:9090", "", nil, 200},
		{"cross-site activity read", "", "GET", "/v1/activity/clients", "127.0.0.1:9090", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"cross-site activity read with Origin", "", "GET", "/v1/activity/waf", "127.0.0.1:9090", "", map[string]string{"Origin": "http://evil.example"}, 403},
		{"cross-site link to the console", "", "GET", "/ui/", "127.0.0.1:9090", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
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
				t.Fatalf("%s %s Host %q %v: %d %.200s, want %d", tt.method, tt.path, tt.host, tt.header, w.Code, w.Body, tt.want)
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

// consolePage loads /ui/ from h as a browser on host would (with cookie,
// when not empty) and returns the page's CSRF token.
func consolePage(t *testing.T, h http.Handler, host, cookie string) string {
	t.Helper()
	r := adminRequest("GET", "/ui/", nil)
	r.Host = host
	r.Header.Set("Sec-Fetch-Site", "none")
	if cookie != "" {
		r.Header.Set("Cookie", console.CookieName+"="+cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	m := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`).FindStringSubmatch(w.Body.String())
	if w.Code != 200 || m == nil {
		t.Fatalf("GET /ui/ on %s: %d, no CSRF token in %.300s", host, w.Code, w.Body)
	}
	return m[1]
}

// TestAdminConsoleCSRF: the console's own writes (same origin, with the
// page's CSRF token) pass the admin gate; the same request without the
// token, with another page's token, from another site or for a rebinding
// Host does not; tools without Origin pass as before.
func TestAdminConsoleCSRF(t *testing.T) {
	h := mustGuard(t, adminYAML).AdminHandler()
	token := consolePage(t, h, "127.0.0.1:9090", "")
	const ban = `{"target": "192.0.2.7"}`
	tests := []struct {
		name, method, path, host, origin, csrf, body string
		want                                         int
	}{
		{"same origin with token: ban", "POST", "/v1/bans", "127.0.0.1:9090", "http://127.0.0.1:9090", token, ban, 201},
		{"same origin with token: lift", "DELETE", "/v1/bans/192.0.2.7", "127.0.0.1:9090", "http://127.0.0.1:9090", token, "", 200},
		{"same origin with token: close a route", "POST", "/v1/routes/checkout/closed", "127.0.0.1:9090", "http://127.0.0.1:9090", token, "", 200},
		{"same origin with token, localhost", "POST", "/v1/bans", "localhost:9090", "http://localhost:9090", token, ban, 201},
		{"same origin through TLS in front", "POST", "/v1/bans", "localhost", "https://localhost", token, ban, 201},
		{"same origin without token", "POST", "/v1/bans", "127.0.0.1:9090", "http://127.0.0.1:9090", "", ban, 403},
		{"same origin without token: close a route", "POST", "/v1/routes/checkout/closed", "127.0.0.1:9090", "http://127.0.0.1:9090", "", "", 403},
		{"same origin, wrong token", "POST", "/v1/bans", "127.0.0.1:9090", "http://127.0.0.1:9090", token + "x", ban, 403},
		{"same origin, another process's token", "POST", "/v1/bans", "127.0.0.1:9090", "http://127.0.0.1:9090", "bm90IHRoaXMgcHJvY2Vzcydz", ban, 403},
		{"same host, other port", "POST", "/v1/bans", "127.0.0.1:9090", "http://127.0.0.1:8080", token, ban, 403},
		{"cross-site with a token", "POST", "/v1/bans", "127.0.0.1:9090", "http://evil.example", token, ban, 403},
		{"cross-site without", "POST", "/v1/bans", "127.0.0.1:9090", "http://evil.example", "", ban, 403},
		{"rebinding: Origin and Host agree", "POST", "/v1/bans", "evil.example:9090", "http://evil.example:9090", token, ban, 421},
		{"opaque origin with token", "POST", "/v1/bans", "127.0.0.1:9090", "null", token, ban, 403},
		{"tool without Origin", "POST", "/v1/bans", "127.0.0.1:9090", "", "", ban, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := adminRequest(tt.method, tt.path, body)
			r.Host = tt.host
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
				r.Header.Set("Sec-Fetch-Site", "same-origin")
			}
			if tt.csrf != "" {
				r.Header.Set(console.CSRFHeader, tt.csrf)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.want)
			}
		})
	}
}

// TestAdminConsoleSession: with admin.token set, the login form's session
// cookie stands for the token on every admin route, writes still need the
// page's CSRF token, and the token's change ends the session.
func TestAdminConsoleSession(t *testing.T) {
	const yaml = adminYAML + "admin: {listen: '127.0.0.1:9090', token: s3cret}\n"
	h := mustGuard(t, yaml).AdminHandler()
	const host, origin = "127.0.0.1:9090", "http://127.0.0.1:9090"
	send := func(method, path, body, cookie, csrf string) *httptest.ResponseRecorder {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		r := adminRequest(method, path, rd)
		r.Host = host
		if method != "GET" {
			r.Header.Set("Origin", origin)
		}
		if cookie != "" {
			r.Header.Set("Cookie", console.CookieName+"="+cookie)
		}
		if csrf != "" {
			r.Header.Set(console.CSRFHeader, csrf)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := send("GET", "/ui/", "", "", ""); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/login" {
		t.Fatalf("GET /ui/ without a session: %d to %q, want 303 to /ui/login", w.Code, w.Header().Get("Location"))
	}
	loginCSRF := consolePage(t, loginAsPage(h), host, "")
	if w := send("POST", "/ui/login", `{"token": "s3cret"}`, "", ""); w.Code != http.StatusForbidden {
		t.Errorf("login from a page without the login page's CSRF token: %d, want 403", w.Code)
	}
	if w := send("POST", "/ui/login", `{"token": "wrong"}`, "", loginCSRF); w.Code != http.StatusUnauthorized {
		t.Errorf("login with a wrong token: %d, want 401", w.Code)
	}
	w := send("POST", "/ui/login", `{"token": "s3cret"}`, "", loginCSRF)
	cookies := w.Result().Cookies()
	if w.Code != http.StatusNoContent || len(cookies) != 1 {
		t.Fatalf("login: %d %v %s", w.Code, cookies, w.Body)
	}
	session := cookies[0].Value
	csrf := consolePage(t, h, host, session)
	steps := []struct {
		name, method, path, body, cookie, csrf string
		want                                   int
	}{
		{"read bans", "GET", "/v1/bans", "", session, "", 200},
		{"read metrics", "GET", "/metrics", "", session, "", 200},
		{"ban", "POST", "/v1/bans", `{"target": "192.0.2.9"}`, session, csrf, 201},
		{"ban without CSRF", "POST", "/v1/bans", `{"target": "192.0.2.10"}`, session, "", 403},
		{"ban with the login page's CSRF", "POST", "/v1/bans", `{"target": "192.0.2.10"}`, session, loginCSRF, 403},
		{"CSRF without the session", "POST", "/v1/bans", `{"target": "192.0.2.10"}`, "", csrf, 401},
		{"forged session", "GET", "/v1/bans", "", "4102444800." + strings.Repeat("A", 43), "", 401},
		{"the token as cookie", "GET", "/v1/bans", "", "s3cret", "", 401},
	}
	for _, s := range steps {
		if w := send(s.method, s.path, s.body, s.cookie, s.csrf); w.Code != s.want {
			t.Errorf("%s: %d %s, want %d", s.name, w.Code, w.Body, s.want)
		}
	}
	rotated := mustGuard(t, adminYAML+"admin: {listen: '127.0.0.1:9090', token: n3w}\n").AdminHandler()
	r := adminRequest("GET", "/v1/bans", nil)
	r.Header.Set("Cookie", console.CookieName+"="+session)
	rw := httptest.NewRecorder()
	rotated.ServeHTTP(rw, r)
	if rw.Code != http.StatusUnauthorized {
		t.Errorf("a session after the token changed: %d, want 401", rw.Code)
	}
}

// loginAsPage serves the login page at /ui/ so that consolePage can read
// its CSRF token.
func loginAsPage(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/ui/login"
		h.ServeHTTP(w, r)
	})
}
