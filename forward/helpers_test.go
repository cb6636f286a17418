package forward

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/refused"
)

// testBackend is a real HTTP server on 127.0.0.1 that can be killed and
// brought back on the same port.
type testBackend struct {
	name    string
	addr    string
	handler http.HandlerFunc
	hits    atomic.Int64

	mu  sync.Mutex
	srv *http.Server
}

func startBackend(t testing.TB, name string, h http.HandlerFunc) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	b := &testBackend{name: name, addr: ln.Addr().String(), handler: h}
	b.serve(ln)
	t.Cleanup(b.kill)
	return b
}

func (b *testBackend) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set("X-Backend", b.name)
		if b.handler != nil {
			b.handler(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok from "+b.name)
	})}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(ln)
}

func (b *testBackend) url() string { return "http://" + b.addr }

// kill closes the listener and every connection: the backend is gone.
func (b *testBackend) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

// revive listens on the same address again.
func (b *testBackend) revive(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			b.serve(ln)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("revive %s: %v", b.addr, err)
}

// deadAddr returns a loopback address that refuses connections for the
// whole test.
func deadAddr(t testing.TB) string { return refused.Addr(t) }

var t0 = time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)

var reqSeq atomic.Int64

// clientReq is the chain's view of a request from client.
func clientReq(client string) *filters.Request {
	addr := netip.MustParseAddr(client)
	return &filters.Request{
		Client:       addr,
		ClientPort:   40000,
		Key:          filters.KeyOf(addr, 64),
		Now:          t0,
		ID:           fmt.Sprintf("req-%d", reqSeq.Add(1)),
		ForwardedFor: client + ", 10.0.0.1",
		Peer:         netip.MustParseAddrPort("10.0.0.1:5555"),
		Source:       filters.SourceHeader,
	}
}

// do sends one request through f as the root package would.
func do(f *Forwarder, method, target string, body []byte, fr *filters.Request) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.RemoteAddr = fr.Peer.String()
	fr.HTTP = r
	r = r.WithContext(filters.WithRequest(r.Context(), fr))
	w := httptest.NewRecorder()
	f.ServeHTTP(w, r)
	return w
}

func newForwarder(t testing.TB, cfg Config, env Env) *Forwarder {
	t.Helper()
	f, err := New(cfg, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// waitFor polls cond (test synchronisation, not limiter timing).
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countingHandler counts log records at or above a level.
type countingHandler struct {
	n     atomic.Int64
	level slog.Level
	mu    sync.Mutex
	msgs  []string
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.n.Add(1)
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// routeOf is the route Forwarder.Route picks for host and path (path as
// the server decodes it; raw, when set, is the escaped form the client
// sent).
func routeOf(f *Forwarder, host, path, raw string) (string, error) {
	return f.Route(&http.Request{Host: host, URL: &url.URL{Path: path, RawPath: raw}})
}
