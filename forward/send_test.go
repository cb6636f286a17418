package forward

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// serveForwarder serves f on a real loopback listener, each request with
// the chain's view a client at 203.0.113.7 would get.
func serveForwarder(t *testing.T, f *Forwarder) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr := clientReq("203.0.113.7")
		fr.HTTP = r
		f.ServeHTTP(w, r.WithContext(filters.WithRequest(r.Context(), fr)))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// Two clients that request a 50 MB response and never read it hold a
// max_in_flight: 2 route only until the send timeout: then their slots
// are free and the next client is served.
func TestStalledReaderLosesItsSlot(t *testing.T) {
	chunk := []byte(strings.Repeat("x", 64<<10))
	be := startBackend(t, "big", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			w.Write([]byte("small"))
			return
		}
		w.Header().Set("Content-Length", "52428800")
		for range 50 << 20 / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	const send = 300 * time.Millisecond
	f := newForwarder(t, Config{Upstream: be.url(), Timeouts: Timeouts{Send: filters.Duration(send)},
		Routes: []Route{{Name: "dl", Path: "/", Shield: Shield{MaxInFlight: 2}}}}, Env{})
	addr := serveForwarder(t, f)
	gate := f.byName["dl"].gate
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("GET /big HTTP/1.1\r\nHost: shop.example\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		// Read the status line only, then never read again.
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("stalled client: %q %v", line, err)
		}
	}
	if st := gate.State(); st.InFlight != 2 {
		t.Fatalf("%d in flight, want the 2 stalled downloads", st.InFlight)
	}
	start := time.Now()
	deadline := start.Add(send + 10*time.Second) // the buffers between us fill first; then one send timeout
	for {
		resp, err := http.Get("http://" + addr + "/small")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the route still refuses (%d) %v after two clients stopped reading", resp.StatusCode, time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("served after %v", time.Since(start))
	waitFor(t, 5*time.Second, "both slots free", func() bool { return gate.State().InFlight == 0 })
}
