package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// retryTransport sends one outbound request to its pool: to the backend the
// forwarder picked, and on failure, when it is safe, to others. It records
// each outcome for passive ejection and least-outstanding balancing.
type retryTransport struct {
	f *Forwarder
}

func (t *retryTransport) RoundTrip(out *http.Request) (*http.Response, error) {
	a := attemptFrom(out.Context())
	p := a.pool
	var body *trackedBody
	if out.Body != nil && out.Body != http.NoBody {
		body = &a.reqBody
		body.ReadCloser = out.Body
	}
	b := a.first
	for {
		// The first try goes out as rewrite addressed it; a retry is a copy
		// of it addressed to another backend.
		req := out
		if b != a.first {
			cp := *out
			u := *out.URL
			u.Scheme, u.Host = b.url.Scheme, b.host
			cp.URL = &u
			req = &cp
		}
		if body != nil {
			req.Body = body
		}
		b.requests.Add(1)
		b.outstanding.Add(1)
		resp, err := p.transport.RoundTrip(req)
		if err == nil {
			if p.outlier.failStatus(resp.StatusCode) {
				b.fail(t.f.clock())
			} else {
				b.succeed()
			}
			if resp.StatusCode == http.StatusSwitchingProtocols {
				// An upgraded connection lives on outside the pool's
				// accounting; ReverseProxy needs its body unwrapped.
				b.outstanding.Add(-1)
				return resp, nil
			}
			// One response per attempt: its wrapper is the attempt's.
			a.respBody.ReadCloser, a.respBody.b = resp.Body, b
			resp.Body = &a.respBody
			return resp, nil
		}
		b.outstanding.Add(-1)
		if out.Context().Err() != nil || (body != nil && body.broke.Load()) {
			// The client left, or its body broke off: not the backend's
			// fault, and nothing that may be sent again.
			return nil, err
		}
		now := t.f.clock()
		b.fail(now)
		if a.n+1 >= p.attempts || !retryable(err, out.Method, body, p.idempotent) {
			return nil, err
		}
		if a.n < len(a.tried) {
			a.tried[a.n] = b
		}
		a.n++
		next := p.pick(now.UnixNano(), a.fr.Key, a.tried[:min(a.n, len(a.tried))])
		if next == nil {
			return nil, err
		}
		p.retries.Add(1)
		b = next
	}
}

// retryable says whether a failed try may go to another backend: always
// when the connection failed and no byte of the body was read; after the
// request reached the backend only for idempotent, bodiless requests and
// only when the pool allows it.
func retryable(err error, method string, body *trackedBody, idempotentOK bool) bool {
	if isConnectError(err) && (body == nil || !body.read.Load()) {
		return true
	}
	return idempotentOK && body == nil && idempotent(method)
}

func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// trackedBody notes whether the transport has taken any byte of the
// inbound body and whether reading it failed (the client's fault, never
// the backend's), and ignores Close: the transport closes request bodies when
// a try fails, and a retry needs the body open. The server closes the
// inbound body itself when the handler returns.
type trackedBody struct {
	io.ReadCloser
	read  atomic.Bool
	broke atomic.Bool
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if n > 0 {
		t.read.Store(true)
	}
	if err != nil && err != io.EOF {
		t.broke.Store(true)
	}
	return n, err
}

func (t *trackedBody) Close() error { return nil }

// countedBody ends a request's share of its backend's outstanding count
// when the response body is closed.
type countedBody struct {
	io.ReadCloser
	b    *backend
	done atomic.Bool
}

func (c *countedBody) Close() error {
	if c.done.CompareAndSwap(false, true) {
		c.b.outstanding.Add(-1)
	}
	return c.ReadCloser.Close()
}

// proxyProtoDialer dials a backend and opens the connection with a PROXY
// protocol v2 header: the resolved client as source and the address the
// client reached as destination. Connections made without a request (health
// checks) send the LOCAL command, which the spec reserves for them.
func proxyProtoDialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		h := proxyHeader(attemptFrom(ctx), conn)
		if d.Timeout > 0 {
			conn.SetWriteDeadline(time.Now().Add(d.Timeout))
		}
		if _, err := h.WriteTo(conn); err != nil {
			conn.Close()
			// Nothing of the request was sent: report it as the failed
			// connect it is, so the request may go to another backend.
			return nil, &net.OpError{Op: "dial", Net: network, Addr: conn.RemoteAddr(),
				Err: fmt.Errorf("writing PROXY header: %w", err)}
		}
		conn.SetWriteDeadline(time.Time{})
		return conn, nil
	}
}

func proxyHeader(a *attempt, conn net.Conn) *proxyproto.Header {
	local := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if a == nil || !a.fr.Client.IsValid() {
		return local
	}
	src := &net.TCPAddr{IP: a.fr.Client.AsSlice(), Port: int(a.fr.ClientPort)}
	dst, ok := a.local.(*net.TCPAddr)
	if !ok {
		dst, ok = conn.LocalAddr().(*net.TCPAddr)
	}
	if !ok {
		return local
	}
	h := proxyproto.HeaderProxyFromAddrs(2, src, dst)
	if h.Command != proxyproto.PROXY {
		return local
	}
	return h
}
