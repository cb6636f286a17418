package console

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	secretA = []byte("0123456789abcdef0123456789abcdef")
	secretB = []byte("fedcba9876543210fedcba9876543210")
	t0      = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
)

// clock is a settable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func withCookie(r *http.Request, v string) *http.Request {
	r.AddCookie(&http.Cookie{Name: CookieName, Value: v})
	return r
}

// TestSessionChecks: a session is good for exactly SessionLifetime, only
// under the process secret and token it was made for, and in one spelling.
func TestSessionChecks(t *testing.T) {
	a := newAuth(secretA, "s3cret", nil)
	good := a.newSession(t0)
	exp, _, err := parseSession(good)
	if err != nil || exp != t0.Add(SessionLifetime).Unix() {
		t.Fatalf("newSession(t0) = %q: expiry %d, %v", good, exp, err)
	}
	mac := good[strings.IndexByte(good, '.'):]
	tests := []struct {
		name  string
		auth  *Auth
		value string
		at    time.Time
		ok    bool
	}{
		{"fresh", a, good, t0, true},
		{"a second before expiry", a, good, t0.Add(SessionLifetime - time.Second), true},
		{"at expiry", a, good, t0.Add(SessionLifetime), false},
		{"after expiry", a, good, t0.Add(SessionLifetime + time.Hour), false},
		{"another token", newAuth(secretA, "other", nil), good, t0, false},
		{"another process", newAuth(secretB, "s3cret", nil), good, t0, false},
		{"expiry moved later", a, strconv.FormatInt(exp+3600, 10) + mac, t0, false},
		{"expiry with a leading zero", a, "0" + good, t0, false},
		{"expiry with a plus sign", a, "+" + good, t0, false},
		{"MAC cut short", a, good[:len(good)-2], t0, false},
		{"MAC flipped", a, good[:len(good)-1] + flip(good[len(good)-1]), t0, false},
		{"no dot", a, strings.Replace(good, ".", "", 1), t0, false},
		{"empty", a, "", t0, false},
		{"the token itself", a, "s3cret", t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.auth.checkSession(tt.value, tt.at)
			if (err == nil) != tt.ok {
				t.Fatalf("checkSession(%q) = %v, want ok=%v", tt.value, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrSession) {
				t.Errorf("error %v does not wrap ErrSession", err)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestAuthenticated: without a token everything passes; with one, the
// bearer header or a live session cookie, nothing else.
func TestAuthenticated(t *testing.T) {
	c := &clock{now: t0}
	a := newAuth(secretA, "s3cret", c.Now)
	session := a.newSession(t0)
	tests := []struct {
		name   string
		auth   *Auth
		header string
		cookie string
		at     time.Time
		want   bool
	}{
		{"no token configured", newAuth(secretA, "", c.Now), "", "", t0, true},
		{"nothing", a, "", "", t0, false},
		{"bearer", a, "Bearer s3cret", "", t0, true},
		{"bearer, wrong", a, "Bearer s3cre", "", t0, false},
		{"token without Bearer", a, "s3cret", "", t0, false},
		{"basic scheme", a, "Basic s3cret", "", t0, false},
		{"session", a, "", session, t0, true},
		{"session, expired", a, "", session, t0.Add(SessionLifetime), false},
		{"the token as cookie", a, "", "s3cret", t0, false},
		{"session of another token", newAuth(secretA, "new", c.Now), "", session, t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.now = tt.at
			r := httptest.NewRequest("GET", "/v1/bans", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.cookie != "" {
				withCookie(r, tt.cookie)
			}
			if got := tt.auth.Authenticated(r); got != tt.want {
				t.Errorf("Authenticated = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCSRFToken: the token is bound to the session the request carries, and
// a session MAC is no CSRF token (purposes are separate).
func TestCSRFToken(t *testing.T) {
	c := &clock{now: t0}
	a := newAuth(secretA, "s3cret", c.Now)
	s1, s2 := a.newSession(t0), a.newSession(t0.Add(time.Minute))
	page := func(cookie string) string {
		r := httptest.NewRequest("GET", "/ui/", nil)
		if cookie != "" {
			withCookie(r, cookie)
		}
		return a.CSRFToken(r)
	}
	tests := []struct {
		name, cookie, token string
		want                bool
	}{
		{"the page's token", s1, page(s1), true},
		{"no token", s1, "", false},
		{"another session's token", s1, page(s2), false},
		{"the login page's token with a session", s1, page(""), false},
		{"the login page's token without one", "", page(""), true},
		{"the session's own MAC", s1, s1[strings.IndexByte(s1, '.')+1:], false},
		{"another process's token", s1, newAuth(secretB, "s3cret", c.Now).CSRFToken(withCookie(httptest.NewRequest("GET", "/ui/", nil), s1)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/bans", nil)
			if tt.cookie != "" {
				withCookie(r, tt.cookie)
			}
			if tt.token != "" {
				r.Header.Set(CSRFHeader, tt.token)
			}
			if got := a.CSRFValid(r); got != tt.want {
				t.Errorf("CSRFValid = %v, want %v", got, tt.want)
			}
		})
	}
	if page(s1) == page(s2) {
		t.Error("two sessions share a CSRF token")
	}
	// A MAC made for one purpose is never the other's for the same text.
	for _, msg := range []string{"", "4102444800", s1} {
		if string(a.mac("csrf", msg)) == string(a.mac("session", msg)) {
			t.Errorf("mac(csrf, %q) = mac(session, %q): purposes are not separated", msg, msg)
		}
	}
}

// FuzzParseSession: parseSession never panics, accepts only the canonical
// spelling, and whatever it accepts formats back to the same value.
func FuzzParseSession(f *testing.F) {
	a := newAuth(secretA, "s3cret", nil)
	for _, s := range []string{a.newSession(t0), "1.", ".", "", "0.AAAA", "-1.x", "99999999999999999999.x", "1." + strings.Repeat("A", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		exp, sum, err := parseSession(v)
		if err != nil {
			if !errors.Is(err, ErrSession) {
				t.Fatalf("error %v does not wrap ErrSession", err)
			}
			return
		}
		if exp <= 0 || len(sum) != 32 {
			t.Fatalf("parseSession(%q) = %d, %d bytes", v, exp, len(sum))
		}
		if back := strconv.FormatInt(exp, 10) + "." + encodeMAC(sum); back != v {
			t.Fatalf("parseSession(%q) accepted a non-canonical spelling of %q", v, back)
		}
		_ = a.checkSession(v, t0) // must not panic
	})
}
