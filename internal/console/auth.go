package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// What the browser, the pages and the admin gate agree on.
const (
	// CookieName is the session cookie /ui/login sets.
	CookieName = "edgeguard_console"
	// CSRFHeader carries the page's CSRF token on the console's requests.
	CSRFHeader = "X-CSRF-Token"
	// SessionLifetime is how long a console login lasts. A working day: an
	// operator under attack should not be sent back to the login form, and
	// a cookie left in a browser should not outlive the shift by much.
	SessionLifetime = 12 * time.Hour
)

// ErrSession says why a session cookie is refused.
var ErrSession = errors.New("console: bad session cookie")

// processSecret is drawn once per process. A config reload rebuilds the
// admin handler and its Auth; sessions survive that, and end with the
// process.
var processSecret = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never returns an error; it crashes the program instead
	return b
})

// Auth decides which requests may use the admin listener: with no token,
// every one (the listener is then on loopback, which the config enforces);
// with a token, those that carry it as a bearer token or carry a session
// cookie that /ui/login gave for it. It also makes and checks the CSRF
// tokens of the console's pages. An Auth is safe for concurrent use.
type Auth struct {
	token string
	key   []byte // MAC key: the process secret and the token
	now   func() time.Time
}

// NewAuth returns the Auth for admin.token token (empty: none); now is the
// clock that session expiry is measured on.
func NewAuth(token string, now func() time.Time) *Auth {
	return newAuth(processSecret(), token, now)
}

func newAuth(secret []byte, token string, now func() time.Time) *Auth {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("edgeguard console key\x00"))
	m.Write([]byte(token))
	return &Auth{token: token, key: m.Sum(nil), now: now}
}

// TokenRequired reports whether admin.token is set.
func (a *Auth) TokenRequired() bool { return a.token != "" }

// Authenticated reports whether r may use the admin API.
func (a *Auth) Authenticated(r *http.Request) bool {
	if a.token == "" {
		return true
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && a.tokenMatches(tok) {
		return true
	}
	_, ok := a.session(r)
	return ok
}

// tokenMatches compares in constant time (for a given length).
func (a *Auth) tokenMatches(s string) bool {
	return a.token != "" && subtle.ConstantTimeCompare([]byte(s), []byte(a.token)) == 1
}

// Require serves r with next when Authenticated allows it or when it needs
// no authentication (the login page and the static files, which hold no
// data). A browser that opens a console page without a session is sent to
// /ui/login; anything else is answered 401.
func (a *Auth) Require(next http.Handler) http.Handler {
	if a.token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case a.Authenticated(r) || public(r):
			next.ServeHTTP(w, r)
		case r.Method == http.MethodGet && (r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/")):
			setPageHeaders(w.Header())
			http.Redirect(w, r, loginPath, http.StatusSeeOther)
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgeguard admin"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		}
	})
}

// public reports whether r is for what a browser must reach before it
// has a session.
func public(r *http.Request) bool {
	p := r.URL.Path
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return p == loginPath || strings.HasPrefix(p, staticPrefix)
	case http.MethodPost:
		return p == loginPath
	}
	return false
}

// session returns r's session cookie when it is valid now.
func (a *Auth) session(r *http.Request) (string, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return "", false
	}
	if a.checkSession(c.Value, a.now()) != nil {
		return "", false
	}
	return c.Value, true
}

// newSession is a session cookie value that expires SessionLifetime after
// now: the expiry in Unix seconds, ".", and its MAC.
func (a *Auth) newSession(now time.Time) string {
	exp := strconv.FormatInt(now.Add(SessionLifetime).Unix(), 10)
	return exp + "." + encodeMAC(a.mac("session", exp))
}

// checkSession says why v is not a session this Auth gave, or one that has
// expired by now; nil when it is good.
func (a *Auth) checkSession(v string, now time.Time) error {
	exp, sum, err := parseSession(v)
	if err != nil {
		return err
	}
	if !hmac.Equal(sum, a.mac("session", strconv.FormatInt(exp, 10))) {
		return fmt.Errorf("%w: not given by this process for this token", ErrSession)
	}
	if now.Unix() >= exp {
		return fmt.Errorf("%w: expired at %s", ErrSession, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// parseSession splits a session cookie value into its expiry and MAC. The
// expiry must be in canonical form (decimal digits, no leading zero), so
// that exactly one spelling of a session exists.
func parseSession(v string) (exp int64, sum []byte, err error) {
	expText, macText, ok := strings.Cut(v, ".")
	if !ok {
		return 0, nil, fmt.Errorf("%w: %.40q: want EXPIRY.MAC", ErrSession, v)
	}
	exp, err = strconv.ParseInt(expText, 10, 64)
	if err != nil || exp <= 0 || strconv.FormatInt(exp, 10) != expText {
		return 0, nil, fmt.Errorf("%w: expiry %.20q is not a positive decimal number of seconds", ErrSession, expText)
	}
	// The length check comes first because the decoder skips \r and \n,
	// which would give one MAC many spellings.
	if len(macText) != macEncoding.EncodedLen(sha256.Size) {
		return 0, nil, fmt.Errorf("%w: the MAC is not %d bytes of unpadded base64url", ErrSession, sha256.Size)
	}
	sum, err = macEncoding.DecodeString(macText)
	if err != nil || len(sum) != sha256.Size {
		return 0, nil, fmt.Errorf("%w: the MAC is not %d bytes of unpadded base64url", ErrSession, sha256.Size)
	}
	return exp, sum, nil
}

// macEncoding spells MACs in cookies and pages; strict, so that a MAC has
// one spelling (no stray bits in the last character).
var macEncoding = base64.RawURLEncoding.Strict()

func encodeMAC(sum []byte) string { return macEncoding.EncodeToString(sum) }

// mac is the HMAC of msg for purpose under the Auth's key; purposes keep a
// session's MAC from serving as a CSRF token and the reverse.
func (a *Auth) mac(purpose, msg string) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// CSRFToken is the token that a page served for r embeds and sends back on
// its requests: bound to r's session, or to none (no token configured, or
// the login page).
func (a *Auth) CSRFToken(r *http.Request) string {
	s, _ := a.session(r)
	return encodeMAC(a.mac("csrf", s))
}

// CSRFValid reports whether r carries, in CSRFHeader, the CSRF token of
// its session.
func (a *Auth) CSRFValid(r *http.Request) bool {
	got := r.Header.Get(CSRFHeader)
	return got != "" && hmac.Equal([]byte(got), []byte(a.CSRFToken(r)))
}
