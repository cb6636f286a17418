// Package httpkit is edgeguard's HTTP response kit: the conventions that
// every part answering a client or writing to an upstream shares, written
// once so that the Guard, the forwarder and the stages cannot drift apart.
//
// It owns how a deny and any other refusal are written (a short plain-text
// body that is never sniffed or cached), how Retry-After is rounded, how
// request ids are made and which inbound ids are kept, which headers a
// client could use to claim an address or to make a proxy drop what the WAF
// inspected, and how a web origin is written.
package httpkit

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// RetryAfter is the Retry-After value for d: whole seconds, rounded up as
// the RateLimit fields round them (filters.CeilSeconds), and at least 1, so
// that a client told to wait never comes back at once.
func RetryAfter(d time.Duration) string {
	return strconv.FormatInt(max(filters.CeilSeconds(d), 1), 10)
}

// WriteRefusal answers with status and a short plain-text body: not to be
// sniffed as markup, not to be cached, with a Retry-After when retryAfter
// is positive. body names what the client may quote (the request id),
// never the rule or the payload that matched.
func WriteRefusal(w http.ResponseWriter, status int, retryAfter time.Duration, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if retryAfter > 0 {
		h.Set("Retry-After", RetryAfter(retryAfter))
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// WriteDeny answers the request with id as the deny v says: a dropped
// connection (v.Drop, where the writer can hijack), a redirect (a 3xx with
// a Location the caller already set), or a refusal naming the status, the
// stage and the request id, never the rule or the payload that matched.
// Retry-After comes from v.RetryAfter. The headers v asks for are the
// caller's to add first.
func WriteDeny(w http.ResponseWriter, id string, v filters.Verdict) {
	if v.Drop {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
	}
	h := w.Header()
	if v.RetryAfter > 0 {
		h.Set("Retry-After", RetryAfter(v.RetryAfter))
	}
	status := v.StatusCode()
	if (status < 300 || status > 599) || (status < 400 && h.Get("Location") == "") {
		// A rule may name any number; one that is not an error (or a
		// redirect with somewhere to go) would let the request look served,
		// and one outside 100-999 would make net/http panic.
		status = http.StatusForbidden
	}
	if status < 400 {
		w.WriteHeader(status)
		return
	}
	WriteRefusal(w, status, 0, strconv.Itoa(status)+" "+http.StatusText(status)+"\nrequest "+id+" refused by "+v.Stage+"\n")
}

// MaxRequestIDLen is the longest inbound X-Request-Id that is kept.
const MaxRequestIDLen = 128

// RequestID returns the id of a request whose X-Request-Id header was sent:
// sent itself when the peer that sent it is trusted and it is a sane token
// (1 to MaxRequestIDLen visible ASCII characters), a new one otherwise. A
// client must not choose the id that logs and the upstream correlate on.
func RequestID(sent string, trusted bool) string {
	if trusted && sent != "" && len(sent) <= MaxRequestIDLen && visible(sent) {
		return sent
	}
	return NewRequestID()
}

// NewRequestID makes a request id: 24 lower-case hex digits from 96 random
// bits.
func NewRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	var id [24]byte
	hex.Encode(id[:], b[:])
	return string(id[:])
}

func visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// ClientAddressHeaders are client-address and forwarding headers that
// backends and frameworks are known to believe, beyond the ones
// httputil.ReverseProxy strips itself (Forwarded, X-Forwarded-For/-Host/
// -Proto) and X-Real-IP, which edgeguard always sets. None may reach an
// upstream or a wrapped handler as the client sent it. The names are in
// canonical form, so they can be deleted from a header map without
// canonicalising each again.
var ClientAddressHeaders = []string{
	"X-Client-Ip",
	"X-Cluster-Client-Ip",
	"Client-Ip",
	"X-Forwarded",
	"Forwarded-For",
	"X-Forwarded-Port",
	"X-Forwarded-Prefix",
	"X-Forwarded-Server",
	"True-Client-Ip",
	"Cf-Connecting-Ip",
	"Fastly-Client-Ip",
	"X-Original-Forwarded-For",
	"X-Originating-Ip",
	"X-Remote-Ip",
	"X-Remote-Addr",
}

// forwardingNames are every client-address and forwarding header name,
// ClientAddressHeaders and the ones edgeguard writes itself, in lower case
// with hyphens: the form spellingOf reduces a header name to.
var forwardingNames = func() map[string]bool {
	m := map[string]bool{"x-real-ip": true, "x-forwarded-for": true, "forwarded": true, "x-forwarded-host": true, "x-forwarded-proto": true}
	for _, n := range ClientAddressHeaders {
		m[strings.ToLower(n)] = true
	}
	return m
}()

// StripClientAddress deletes from h every header of ClientAddressHeaders,
// and every spelling with underscores of any client-address or forwarding
// header (X_Real_IP, x_forwarded_for, X-Forwarded_For): CGI, WSGI, Rack
// and PHP read "_" and "-" alike, so such a header reaches the application
// as HTTP_X_REAL_IP beside, or instead of, the one edgeguard set. The
// hyphenated forms edgeguard writes itself (X-Real-IP, X-Forwarded-*) are
// the caller's to set or remove.
func StripClientAddress(h http.Header) {
	for _, name := range ClientAddressHeaders {
		delete(h, name)
	}
	for k := range h {
		if strings.IndexByte(k, '_') >= 0 && forwardingNames[spellingOf(k)] {
			delete(h, k)
		}
	}
}

// spellingOf reduces a header name to lower case with "_" read as "-".
// StripClientAddress asks it only of the rare names with an underscore, so
// the usual request costs no allocation here.
func spellingOf(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' {
			return '-'
		}
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, name)
}

// ErrHopByHop is wrapped by CheckConnection's errors.
var ErrHopByHop = errors.New("httpkit: Connection names a header that must reach the upstream")

// hopByHop are the headers a Connection list may name: the ones that are
// about this connection and nothing else (RFC 9110 7.6.1), and the
// connection options close and keep-alive.
var hopByHop = map[string]bool{
	"close": true, "keep-alive": true, "upgrade": true, "te": true, "trailer": true,
	"proxy-connection": true, "http2-settings": true,
}

// framingHeaders are what the upstream needs to parse the request and its
// body, whether or not the request carries them.
var framingHeaders = map[string]bool{
	"host": true, "content-type": true, "content-length": true, "content-encoding": true,
	"transfer-encoding": true, "content-range": true,
}

// CheckConnection refuses a request whose Connection header names a header
// that a proxy would then drop between the WAF and the upstream: one the
// request carries (the WAF has inspected it, and the upstream would decide
// without it) or one that frames the body (Connection: Content-Type makes
// the upstream parse a body the WAF parsed as JSON as something else). It
// returns nil for the hop-by-hop names and for a name the request does not
// carry.
func CheckConnection(h http.Header) error {
	for _, line := range h["Connection"] {
		for tok := range strings.SplitSeq(line, ",") {
			tok = strings.ToLower(strings.TrimSpace(tok))
			if tok == "" || hopByHop[tok] {
				continue
			}
			if framingHeaders[tok] {
				return fmt.Errorf("%w: %q frames the body", ErrHopByHop, tok)
			}
			if _, ok := h[http.CanonicalHeaderKey(tok)]; ok {
				return fmt.Errorf("%w: %q was inspected", ErrHopByHop, tok)
			}
		}
	}
	return nil
}

// ErrOrigin is wrapped by ParseOrigin's errors.
var ErrOrigin = errors.New("httpkit: not an origin")

// ParseOrigin returns the normal form of a web origin as a browser sends it
// in the Origin header ("https://console.example:8443"): the scheme and host
// in lower case, the scheme's default port dropped. Anything else (a path, a
// user, a query, "null", another scheme) is an error: an origin list is a
// security setting and must say exactly which pages it admits.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrOrigin, s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("%w: %q: want http:// or https:// and a host, like https://console.example", ErrOrigin, s)
	case u.Host == "" || u.Opaque != "":
		return "", fmt.Errorf("%w: %q: no host", ErrOrigin, s)
	case u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("%w: %q: an origin is scheme://host[:port], with nothing after it", ErrOrigin, s)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", fmt.Errorf("%w: %q: no host", ErrOrigin, s)
	}
	if strings.Contains(host, "%") {
		return "", fmt.Errorf("%w: %q: an IPv6 zone is no part of an origin", ErrOrigin, s)
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		return scheme + "://" + host, nil
	}
	return scheme + "://" + host + ":" + port, nil
}
