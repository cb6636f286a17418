package forward

import (
	"runtime"
	"testing"
)

// TestCopyBuffersSize: every buffer lent is ReverseProxy's copy size, and
// one of another size is refused back rather than filed under the wrong
// length.
func TestCopyBuffersSize(t *testing.T) {
	c := newCopyBuffers()
	b := c.Get()
	if len(b) != copyBufferSize {
		t.Fatalf("Get: len %d, want %d", len(b), copyBufferSize)
	}
	c.Put(b)
	c.Put(make([]byte, 10)) // must not panic, must not be lent
	for range 4 {
		if got := c.Get(); len(got) != copyBufferSize {
			t.Fatalf("Get after a short Put: len %d, want %d", len(got), copyBufferSize)
		}
	}
}

// TestForwardReusesCopyBuffers: forwarding a response does not allocate a
// copy buffer per request. Without the pool ReverseProxy allocates 32 KiB
// for every response, more than everything else a small request costs on
// both sides of the proxy together.
func TestForwardReusesCopyBuffers(t *testing.T) {
	b := startBackend(t, "a", nil)
	f := newForwarder(t, Config{Upstream: b.url()}, Env{})
	for range 10 { // warm up: connections, pools
		do(f, "GET", "http://example.test/", nil, clientReq("203.0.113.7"))
	}
	const n = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if w := do(f, "GET", "http://example.test/", nil, clientReq("203.0.113.7")); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per forwarded request (proxy and backend)", perRequest)
	if perRequest >= copyBufferSize {
		t.Errorf("%d bytes allocated per forwarded request, want < %d (one copy buffer)", perRequest, copyBufferSize)
	}
}
