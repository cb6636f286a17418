// Package proxykit builds the one reverse proxy that the Go baselines of
// bench/run.sh share, so that "bare" and "Coraza alone" differ by the WAF
// and nothing else.
package proxykit

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// idleConnsPerHost matches edgeguard's forward.DefaultMaxIdleConnsPerHost:
// the standard library's default of 2 would make a baseline that opens a
// new upstream connection for most of wrk's 32 concurrent requests.
const idleConnsPerHost = 64

// New returns a ReverseProxy to the backend at rawURL that uses Rewrite
// (so forwarding headers the client sent are stripped) and sets
// X-Forwarded-For, -Host and -Proto.
func New(rawURL string) (*httputil.ReverseProxy, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("proxykit: parsing upstream %q: %w", rawURL, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("proxykit: upstream %q: want http://host:port", rawURL)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = idleConnsPerHost
	t.IdleConnTimeout = 90 * time.Second
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.SetXForwarded()
		},
		Transport: t,
	}, nil
}
