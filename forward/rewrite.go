package forward

import (
	"net/http/httputil"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/httpkit"
)

// rewrite builds the outbound request. ReverseProxy has already removed
// hop-by-hop headers, Forwarded and X-Forwarded-For/-Host/-Proto;
// X-Real-IP, the configured client IP header and X-Request-Id are set (or
// removed) here, and ClientAddressHeaders removed, so that nothing the
// client sent passes under our names or a name a backend may trust.
func (f *Forwarder) rewrite(pr *httputil.ProxyRequest) {
	a := attemptFrom(pr.In.Context())
	out := pr.Out
	out.URL.Scheme, out.URL.Host = a.first.url.Scheme, a.first.host
	if !a.pool.preserveHost {
		out.Host = ""
	}
	h := out.Header
	fr := a.fr
	httpkit.StripClientAddress(h)
	// The values set here share one array (one allocation instead of one
	// per header); each is capped at its own element, so an append made
	// to one later copies it rather than overwrite its neighbour.
	vals := make([]string, 0, 6)
	set := func(name, value string) {
		vals = append(vals, value)
		h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if fr.Client.IsValid() {
		client := clientString(fr)
		set("X-Real-Ip", client)
		if f.clientHeader != "" {
			set(f.clientHeader, client)
		}
	} else {
		delete(h, "X-Real-Ip")
		if f.clientHeader != "" {
			delete(h, f.clientHeader)
		}
	}
	switch {
	case fr.ForwardedFor != "":
		set("X-Forwarded-For", fr.ForwardedFor)
	case fr.Client.IsValid():
		set("X-Forwarded-For", clientString(fr))
	}
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	set("X-Forwarded-Proto", proto)
	set("X-Forwarded-Host", pr.In.Host)
	if fr.ID != "" {
		set("X-Request-Id", fr.ID)
	} else {
		delete(h, "X-Request-Id")
	}
}

// clientString is fr.Client as text. When the client is the only entry of
// the X-Forwarded-For to send on (no proxy in between: the usual case),
// that string is it, and no new one is made.
func clientString(fr *filters.Request) string {
	var buf [64]byte
	if string(fr.Client.AppendTo(buf[:0])) == fr.ForwardedFor {
		return fr.ForwardedFor
	}
	return fr.Client.String()
}
