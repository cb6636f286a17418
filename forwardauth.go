package edgeguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/time/rate"
)

// Forward-auth: a proxy that already runs at the edge (nginx, Traefik,
// Envoy) asks edgeguard, before it serves a request, whether to serve it.
// The proxy sends a request that describes the original one (its method,
// URI and host in headers, or its own method and path behind a prefix),
// and edgeguard answers 2xx to allow, or the denial's status, headers and
// request id. The original request's body never comes along, so the chain
// sees it without one: client IP, reputation, volumetric and quota decide
// as they would at the edge, and the WAF judges the request line, the
// arguments and the headers (its body rules see an empty body).
//
// The paths of the auth listener name the proxy, since each describes the
// original request its own way and nginx can pass on nothing but a 401 or
// a 403:
//
//	/nginx            auth_request: X-Original-Method, X-Original-URI
//	/traefik          ForwardAuth: X-Forwarded-Method, X-Forwarded-Uri
//	/envoy/PATH       ext_authz over HTTP (path_prefix "/envoy"): the
//	                  request's own method, PATH is the original path
//
// All three take the host from X-Forwarded-Host when it is sent (Host
// otherwise) and the client from the client_ip rule (X-Forwarded-For
// walked from the proxy). The proxy must be in client_ip.trusted_proxies:
// the headers describe someone else's request, and only a proxy's word on
// that counts. Any other peer is refused with 403.

// AuthStatusHeader carries the status of a deny through nginx's
// auth_request, which only tells 401 and 403 apart from an error: to
// nginx, every deny is a 403 with the real status (429, say) here.
const AuthStatusHeader = "X-Edgeguard-Status"

// errAuthRequest is a forward-auth request that does not describe a
// request.
var errAuthRequest = errors.New("edgeguard: forward-auth request")

// ServeAuth answers a forward-auth request (see the paths above): the
// chain's decision about the request it describes. Denies are counted,
// logged and turned into strikes like the edge's.
func (g *Guard) ServeAuth(w http.ResponseWriter, r *http.Request) {
	proxy, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if proxy != "nginx" && proxy != "traefik" && proxy != "envoy" {
		http.Error(w, "edgeguard: forward-auth paths are /nginx, /traefik and /envoy/PATH", http.StatusNotFound)
		return
	}
	peer, _, _ := g.addrs(r)
	if !g.resolver.Trusted(peer.Addr()) {
		g.untrusted.refuse(g.log, peer.Addr(), time.Now())
		http.Error(w, "edgeguard: forward-auth peer not trusted", http.StatusForbidden)
		return
	}
	orig, err := originalRequest(r, proxy, rest)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if proxy == "nginx" {
		w = &nginxAuthWriter{ResponseWriter: w}
	}
	g.serve(w, orig, authAllow{})
}

// untrustedEvery is how often, at most, the log says that forward-auth
// requests from untrusted peers were refused.
const untrustedEvery = 10 * time.Second

// untrustedPeers logs the forward-auth requests refused because their peer
// is not a trusted proxy: a line at the first, then at most one every
// untrustedEvery with how many were refused since the last. A line each
// would let anyone who reaches the auth listener flood the log (a scan, or
// a proxy the operator left out of the list, which sends every request).
type untrustedPeers struct {
	once    sync.Once
	limit   *rate.Limiter
	refused atomic.Int64 // since the last line
}

// refuse counts one refused request from peer at now, and logs when a line
// is due.
func (u *untrustedPeers) refuse(log *slog.Logger, peer netip.Addr, now time.Time) {
	u.once.Do(func() { u.limit = rate.NewLimiter(rate.Every(untrustedEvery), 1) })
	u.refused.Add(1)
	if !u.limit.AllowN(now, 1) {
		return
	}
	n := u.refused.Swap(0)
	log.Warn("forward-auth requests from peers not in client_ip.trusted_proxies refused",
		"peer", peer.String(), "refused", n, "every", untrustedEvery.String())
}

// originalRequest rebuilds the request r describes, without a body.
func originalRequest(r *http.Request, proxy, rest string) (*http.Request, error) {
	h := r.Header
	method, uri := r.Method, "/"+rest
	switch proxy {
	case "nginx":
		method, uri = h.Get("X-Original-Method"), h.Get("X-Original-Uri")
	case "traefik":
		method, uri = h.Get("X-Forwarded-Method"), h.Get("X-Forwarded-Uri")
	case "envoy":
		if r.URL.RawQuery != "" {
			uri += "?" + r.URL.RawQuery
		}
	}
	if method == "" || !httpguts.ValidHeaderFieldName(method) {
		return nil, fmt.Errorf("%w: method %q is not an HTTP method", errAuthRequest, method)
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || !strings.HasPrefix(uri, "/") {
		return nil, fmt.Errorf("%w: URI %q is not a path and query", errAuthRequest, uri)
	}
	orig := r.Clone(r.Context())
	orig.Method, orig.URL, orig.RequestURI = method, u, uri
	if host := h.Get("X-Forwarded-Host"); host != "" {
		orig.Host = host
	}
	orig.Body, orig.ContentLength = http.NoBody, 0
	// The description is not part of what is described: left in, the WAF
	// would score an attack in the URI twice.
	for _, k := range []string{"X-Original-Method", "X-Original-Uri", "X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host", "Content-Length"} {
		orig.Header.Del(k)
	}
	return orig, nil
}

// authAllow answers a forward-auth request the chain let through: 200 and
// no body. The stages' headers (RateLimit) and the request id are already
// on the response for the proxy to pass on.
type authAllow struct{}

func (authAllow) pass(w http.ResponseWriter, _ *http.Request, _ *filters.Request) {
	w.WriteHeader(http.StatusOK)
}

// nginxAuthWriter turns every deny into the 403 nginx's auth_request
// understands, with the real status in AuthStatusHeader for the nginx
// config to answer with (any other status would reach the client as 500).
type nginxAuthWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *nginxAuthWriter) WriteHeader(code int) {
	if !w.wrote && code >= 400 && code != http.StatusUnauthorized {
		w.Header().Set(AuthStatusHeader, strconv.Itoa(code))
		code = http.StatusForbidden
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *nginxAuthWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}
