package edgeguard

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/internal/console"
	"github.com/edgeguard/edgeguard/internal/httpkit"
)

// adminGate refuses the admin requests a web page could make a browser
// send. The admin listener is on loopback and often without a token, so any
// page the operator opens can reach it: by DNS rebinding (the page's own
// name made to resolve to 127.0.0.1, so the browser sends that name as Host)
// or by a cross-site form or fetch (the browser sends Origin, and
// Sec-Fetch-Site: cross-site). A tool such as curl sends neither. The
// console's own pages are browser pages of the admin's origin: their
// requests pass with the page's CSRF token.
type adminGate struct {
	listenHost string     // host part of admin.listen, lower case ("" when unparsable)
	listenAddr netip.Addr // admin.listen's address when it is one
	origins    map[string]bool
	auth       *console.Auth // checks the CSRF token of same-origin requests
}

func newAdminGate(a config.Admin, auth *console.Auth) *adminGate {
	g := &adminGate{origins: map[string]bool{}, auth: auth}
	if host, _, err := net.SplitHostPort(a.Listen); err == nil {
		g.listenHost = strings.ToLower(host)
		if addr, err := netip.ParseAddr(host); err == nil {
			g.listenAddr = addr.Unmap()
		} else if host == "" {
			g.listenAddr = netip.IPv4Unspecified() // ":9090" listens on every address
		}
	}
	for _, o := range a.AllowedOrigins {
		if n, err := httpkit.ParseOrigin(o); err == nil { // Validate refused the others
			g.origins[n] = true
		}
	}
	return g
}

func (g *adminGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostAllowed(r.Host) {
			http.Error(w, "admin: Host "+quoteHost(r.Host)+" is not the admin address or a loopback name", http.StatusMisdirectedRequest)
			return
		}
		if !g.originAllowed(r) {
			http.Error(w, "admin: browser requests are refused unless admin.allowed_origins lists their origin", http.StatusForbidden)
			return
		}
		if hasBody(r) && !isJSON(r.Header.Get("Content-Type")) {
			http.Error(w, "admin: a request body must be Content-Type: application/json", http.StatusUnsupportedMediaType)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether a request for host may be for the admin API:
// a loopback name or address, the admin address itself, or (when the admin
// listens on every address) any address. A name other than the configured
// one is what DNS rebinding sends. A missing Host (HTTP/1.0) is no browser's.
func (g *adminGate) hostAllowed(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")), ".")
	if addr, err := netip.ParseAddr(host); err == nil {
		addr = addr.Unmap()
		return addr.IsLoopback() || addr == g.listenAddr || g.listenAddr.IsValid() && g.listenAddr.IsUnspecified()
	}
	// Browsers resolve localhost and its subdomains to loopback themselves
	// (RFC 6761), so a page cannot rebind them.
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || host == g.listenHost
}

// originAllowed reports whether r is from no browser page, from one that
// admin.allowed_origins lists, or from a console page of the admin listener
// itself that sends its CSRF token. Browsers send Origin on every
// cross-origin request and on every POST; Sec-Fetch-Site covers the rest.
func (g *adminGate) originAllowed(r *http.Request) bool {
	origin, sent := r.Header["Origin"]
	if sent {
		n, err := httpkit.ParseOrigin(strings.Join(origin, ","))
		if err != nil {
			return false
		}
		return g.origins[n] || sameOrigin(n, r.Host) && g.auth.CSRFValid(r)
	}
	return !strings.EqualFold(r.Header.Get("Sec-Fetch-Site"), "cross-site")
}

// sameOrigin reports whether origin (in ParseOrigin's normal form) is the
// page origin of a request for host: that host and port exactly, over http
// or https (TLS may end in a proxy in front of the admin listener). wrap has
// already checked host against DNS rebinding.
func sameOrigin(origin, host string) bool {
	if host == "" {
		return false
	}
	for _, scheme := range [...]string{"http://", "https://"} {
		if n, err := httpkit.ParseOrigin(scheme + host); err == nil && n == origin {
			return true
		}
	}
	return false
}

// hasBody reports whether r carries a body: a declared length, or chunks.
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100]
	}
	return strconv.Quote(h)
}
