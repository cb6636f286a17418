package console

import (
	"embed"
	"encoding/json"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// Where the console lives on the admin listener.
const (
	// Prefix is the path the admin listener mounts Handler on.
	Prefix       = "/ui/"
	loginPath    = "/ui/login"
	logoutPath   = "/ui/logout"
	staticPrefix = "/ui/static/"
)

// contentSecurityPolicy lets a console page run only the scripts and
// styles of the admin listener itself: an injected <script> or inline
// handler never runs, and no other site may frame the page (clickjacking
// a ban or a route switch).
const contentSecurityPolicy = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed ui
var files embed.FS

var pages = template.Must(template.ParseFS(files, "ui/*.html"))

// maxLoginBody bounds a POST /ui/login body: {"token": "..."}.
const maxLoginBody = 4 << 10

// Handler serves the console under Prefix:
//
//	GET  /ui/            the console (one page; its views are hash routes)
//	GET  /ui/login       the login form (only with a token)
//	POST /ui/login       {"token": "..."}: 204 and a session cookie, or 401
//	POST /ui/logout      ends the browser's session: 204, the cookie cleared
//	GET  /ui/static/...  the scripts, styles and icon
//
// The owner mounts it behind a.Require and the admin gate, like the rest of
// the admin API.
func Handler(a *Auth) http.Handler {
	mux := http.NewServeMux()
	static, err := fs.Sub(files, "ui/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	serveStatic := http.StripPrefix(staticPrefix, http.FileServerFS(static))
	mux.HandleFunc("GET "+staticPrefix, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		serveStatic.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		a.page(w, r, "index.html")
	})
	mux.HandleFunc("GET "+loginPath, func(w http.ResponseWriter, r *http.Request) {
		if !a.TokenRequired() {
			http.Redirect(w, r, Prefix, http.StatusSeeOther)
			return
		}
		a.page(w, r, "login.html")
	})
	mux.HandleFunc("POST "+loginPath, a.login)
	mux.HandleFunc("POST "+logoutPath, a.logout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w.Header())
		mux.ServeHTTP(w, r)
	})
}

// setPageHeaders sets what every answer under Prefix carries.
func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// pageData is what the page templates see.
type pageData struct {
	CSRF          string // the page's CSRF token, for CSRFHeader
	TokenRequired bool   // admin.token is set: there is a session to log out of
}

func (a *Auth) page(w http.ResponseWriter, r *http.Request, name string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The templates are fixed and their data is two plain values: the only
	// failure left is a write to a client that went away.
	_ = pages.ExecuteTemplate(w, name, pageData{CSRF: a.CSRFToken(r), TokenRequired: a.TokenRequired()})
}

func (a *Auth) login(w http.ResponseWriter, r *http.Request) {
	if !a.TokenRequired() {
		writeError(w, http.StatusNotFound, "admin.token is not set: the console needs no login")
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody))
	dec.DisallowUnknownFields()
	var req struct {
		Token string `json:"token"`
	}
	if err := dec.Decode(&req); err != nil || dec.Decode(&struct{}{}) != io.EOF {
		writeError(w, http.StatusBadRequest, `body: want one JSON object {"token": "..."}`)
		return
	}
	if !a.tokenMatches(req.Token) {
		writeError(w, http.StatusUnauthorized, "wrong token")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    a.newSession(a.now()),
		Path:     "/",
		MaxAge:   int(SessionLifetime / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	w.WriteHeader(http.StatusNoContent)
}

// logout clears the browser's cookie. The session itself stays valid until
// it expires (nothing is stored to revoke); changing admin.token ends every
// session at once.
func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	w.WriteHeader(http.StatusNoContent)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
