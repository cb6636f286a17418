package console

import (
	"crypto/tls"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(h http.Handler, method, target, body string, setup func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if setup != nil {
		setup(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestPagesCarrySecurityHeaders: every answer under /ui/, the redirect to
// the login form and errors included, forbids inline script, framing,
// sniffing, referrers and caching.
func TestPagesCarrySecurityHeaders(t *testing.T) {
	c := &clock{now: t0}
	a := newAuth(secretA, "s3cret", c.Now)
	h := a.Require(Handler(a))
	for _, target := range []string{"/ui/", "/ui/login", "/ui/static/console.js", "/ui/static/console.css", "/ui/nosuch"} {
		t.Run(target, func(t *testing.T) {
			w := serve(h, "GET", target, "", nil)
			for k, want := range map[string]string{
				"Content-Security-Policy": contentSecurityPolicy,
				"X-Frame-Options":         "DENY",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-store",
			} {
				if got := w.Header().Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
	for _, must := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(contentSecurityPolicy, must) {
			t.Errorf("the CSP lacks %q", must)
		}
	}
	if strings.Contains(contentSecurityPolicy, "unsafe-inline") || strings.Contains(contentSecurityPolicy, "unsafe-eval") {
		t.Errorf("the CSP allows inline or eval'd script: %s", contentSecurityPolicy)
	}
}

// TestNoInlineScript: the CSP forbids inline script, so the pages must have
// none (a <script> with a body, or an on* attribute) or they break.
func TestNoInlineScript(t *testing.T) {
	inline := regexp.MustCompile(`(?is)<script[^>]*>\s*[^<\s]|\son[a-z]+\s*=|javascript:|\sstyle\s*=`)
	err := fs.WalkDir(files, "ui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".html") {
			return err
		}
		b, _ := fs.ReadFile(files, path)
		if m := inline.Find(b); m != nil {
			t.Errorf("%s: inline script or style the CSP refuses: %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRequireWithToken: with a token, a console page without a session
// goes to the login form, the API answers 401, and only the login form and
// the static files are open.
func TestRequireWithToken(t *testing.T) {
	c := &clock{now: t0}
	a := newAuth(secretA, "s3cret", c.Now)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	h := a.Require(inner)
	session := a.newSession(t0)
	tests := []struct {
		method, target, cookie string
		want                   int
		location               string
	}{
		{"GET", "/ui/", "", http.StatusSeeOther, "/ui/login"},
		{"GET", "/ui", "", http.StatusSeeOther, "/ui/login"},
		{"GET", "/ui/#bans", "", http.StatusSeeOther, "/ui/login"},
		{"GET", "/ui/login", "", 299, ""},
		{"POST", "/ui/login", "", 299, ""},
		{"GET", "/ui/static/console.js", "", 299, ""},
		{"POST", "/ui/logout", "", http.StatusUnauthorized, ""},
		{"GET", "/v1/bans", "", http.StatusUnauthorized, ""},
		{"POST", "/v1/bans", "", http.StatusUnauthorized, ""},
		{"GET", "/v1/activity/overview", "", http.StatusUnauthorized, ""},
		{"GET", "/v1/bans", session, 299, ""},
		{"GET", "/ui/", session, 299, ""},
		{"DELETE", "/v1/bans/192.0.2.1", session, 299, ""},
	}
	for _, tt := range tests {
		w := serve(h, tt.method, tt.target, "", func(r *http.Request) {
			if tt.cookie != "" {
				withCookie(r, tt.cookie)
			}
		})
		if w.Code != tt.want || w.Header().Get("Location") != tt.location {
			t.Errorf("%s %s (session %v): %d to %q, want %d to %q", tt.method, tt.target, tt.cookie != "", w.Code, w.Header().Get("Location"), tt.want, tt.location)
		}
	}
	if got := serve(newAuth(secretA, "", c.Now).Require(inner), "GET", "/v1/bans", "", nil).Code; got != 299 {
		t.Errorf("without a token: %d, want the handler's 299", got)
	}
}

// TestLogin: the right token gives a session cookie with the safe
// attributes and never the token; anything else gives none.
func TestLogin(t *testing.T) {
	c := &clock{now: t0}
	a := newAuth(secretA, "s3cret", c.Now)
	h := Handler(a)
	tests := []struct {
		name, body string
		want       int
	}{
		{"right token", `{"token": "s3cret"}`, http.StatusNoContent},
		{"wrong token", `{"token": "s3cre"}`, http.StatusUnauthorized},
		{"empty token", `{"token": ""}`, http.StatusUnauthorized},
		{"no body", ``, http.StatusBadRequest},
		{"not JSON", `token=s3cret`, http.StatusBadRequest},
		{"unknown field", `{"token": "s3cret", "admin": true}`, http.StatusBadRequest},
		{"two objects", `{"token": "s3cret"}{"token": "s3cret"}`, http.StatusBadRequest},
		{"too long", `{"token": "` + strings.Repeat("x", maxLoginBody) + `"}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(h, "POST", "/ui/login", tt.body, nil)
			if w.Code != tt.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.want)
			}
			cookies := w.Result().Cookies()
			if tt.want != http.StatusNoContent {
				if len(cookies) != 0 {
					t.Errorf("a failed login set %v", cookies)
				}
				return
			}
			if len(cookies) != 1 {
				t.Fatalf("cookies %v, want one", cookies)
			}
			ck := cookies[0]
			if ck.Name != CookieName || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge != int(SessionLifetime.Seconds()) {
				t.Errorf("cookie %+v: want %s, HttpOnly, SameSite=Strict, Path=/, Max-Age %v", ck, CookieName, SessionLifetime)
			}
			if strings.Contains(w.Header().Get("Set-Cookie"), "s3cret") {
				t.Error("the cookie carries the token")
			}
			if err := a.checkSession(ck.Value, t0); err != nil {
				t.Errorf("the cookie is no session: %v", err)
			}
		})
	}
	w := serve(h, "POST", "/ui/login", `{"token": "s3cret"}`, func(r *http.Request) { r.TLS = &tls.ConnectionState{} })
	if ck := w.Result().Cookies(); len(ck) != 1 || !ck[0].Secure {
		t.Errorf("login over TLS: cookie %v, want Secure", ck)
	}
	if w := serve(Handler(newAuth(secretA, "", c.Now)), "POST", "/ui/login", `{"token": ""}`, nil); w.Code != http.StatusNotFound {
		t.Errorf("login without a configured token: %d, want 404", w.Code)
	}
	w = serve(h, "POST", "/ui/logout", "", nil)
	if ck := w.Result().Cookies(); w.Code != http.StatusNoContent || len(ck) != 1 || ck[0].Name != CookieName || ck[0].MaxAge >= 0 {
		t.Errorf("logout: %d %v, want 204 and the cookie cleared", w.Code, ck)
	}
}

// TestPages: the console embeds its CSRF token and its own files only; the
// login page exists only with a token; static files are served without a
// directory listing.
func TestPages(t *testing.T) {
	c := &clock{now: t0}
	noToken := newAuth(secretA, "", c.Now)
	withToken := newAuth(secretA, "s3cret", c.Now)
	csrf := noToken.CSRFToken(httptest.NewRequest("GET", "/ui/", nil))
	tests := []struct {
		name   string
		auth   *Auth
		target string
		want   int
		has    []string
		hasNot []string
	}{
		{"console", noToken, "/ui/", 200, []string{`<meta name="csrf-token" content="` + csrf + `">`, `src="/ui/static/console.js"`, `id="view-overview"`}, []string{"Log out", "http://", "https://"}},
		{"console with a token", withToken, "/ui/", 200, []string{"Log out"}, nil},
		{"login", withToken, "/ui/login", 200, []string{`id="login-form"`, `src="/ui/static/login.js"`}, nil},
		{"login without a token", noToken, "/ui/login", http.StatusSeeOther, nil, nil},
		{"script", noToken, "/ui/static/console.js", 200, []string{"X-CSRF-Token", "textContent"}, []string{"innerHTML", "eval("}},
		{"chart", noToken, "/ui/static/chart.js", 200, []string{"getContext('2d')"}, nil},
		{"no listing", noToken, "/ui/static/", 404, nil, nil},
		{"unknown page", noToken, "/ui/admin", 404, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(Handler(tt.auth), "GET", tt.target, "", nil)
			if w.Code != tt.want {
				t.Fatalf("%d, want %d", w.Code, tt.want)
			}
			for _, s := range tt.has {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("lacks %q", s)
				}
			}
			for _, s := range tt.hasNot {
				if strings.Contains(w.Body.String(), s) {
					t.Errorf("has %q", s)
				}
			}
		})
	}
}
