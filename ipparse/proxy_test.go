package ipparse

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	proxyproto "github.com/pires/go-proxyproto"
)

var (
	trustLoopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	trustOther    = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
)

// serveProxy serves HTTP on 127.0.0.1 behind pp.Listen. The handler reports
// what ConnAddrs, r.RemoteAddr and ResolveRequest see.
func serveProxy(t *testing.T, pp ProxyProtocol, connCtx func(context.Context, net.Conn) context.Context) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Untrusted starts: the forwarding header must never matter here.
	res, err := NewResolver(Config{TrustedProxies: trustOther})
	if err != nil {
		t.Fatal(err)
	}
	if connCtx == nil {
		connCtx = ConnContext
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, start, via := ConnAddrs(ConnFromContext(r.Context()))
			got, _, err := res.ResolveRequest(r)
			fmt.Fprintf(w, "start=%s via=%v remote=%s client=%s source=%s err=%v", start, via, r.RemoteAddr, got.Addr, got.Source, err)
		}),
		ConnContext: connCtx,
		ErrorLog:    log.New(io.Discard, "", 0),
	}
	go srv.Serve(pp.Listen(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

const request = "GET / HTTP/1.1\r\nHost: edge\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n"

// exchange sends prefix and a request on one connection and returns whatever
// comes back before the server closes it.
func exchange(t *testing.T, addr string, prefix []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(append(append([]byte{}, prefix...), request...)); err != nil {
		return ""
	}
	b, _ := io.ReadAll(c) // EOF or reset: both end the exchange
	return string(b)
}

// refused reports whether a response is a closed connection: nothing, or a 400.
func refused(resp string) bool {
	return resp == "" || strings.HasPrefix(resp, "HTTP/1.1 400")
}

func body(resp string) string {
	if i := strings.Index(resp, "\r\n\r\n"); i >= 0 {
		return resp[i+4:]
	}
	return ""
}

func v1(line string) []byte { return []byte(line) }

// v2 builds a PROXY v2 header by hand: signature, version/command byte,
// family byte, the length field and the payload.
func v2(verCmd, fam byte, length int, payload []byte) []byte {
	b := append([]byte{}, proxyproto.SIGV2...)
	b = append(b, verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(length))
	return append(b, payload...)
}

func addr4(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

func addr6(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

func tlv(typ byte, length int, value []byte) []byte {
	b := binary.BigEndian.AppendUint16([]byte{typ}, uint16(length))
	return append(b, value...)
}

// formatted builds a header with go-proxyproto's own writer.
func formatted(t *testing.T, version byte, src, dst string, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version,
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var someTLVs = []proxyproto.TLV{
	{Type: proxyproto.PP2_TYPE_ALPN, Value: []byte("h2")},
	{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("edge.example")},
	{Type: proxyproto.PP2_TYPE_UNIQUE_ID, Value: []byte("abc123")},
	{Type: proxyproto.PP2_TYPE_NOOP, Value: make([]byte, 5)},
	{Type: 0xE1, Value: []byte("custom")},
}

// Rule 1 from a trusted peer: the header's source is the start address; v1
// UNKNOWN and v2 LOCAL keep the peer.
func TestProxyTrustedPeer(t *testing.T) {
	for _, required := range []bool{false, true} {
		t.Run(fmt.Sprintf("required=%v", required), func(t *testing.T) {
			addr := serveProxy(t, ProxyProtocol{Trusted: trustLoopback, Required: required, HeaderTimeout: filters.Duration(time.Second)}, nil)
			cases := []struct {
				name   string
				prefix []byte
				start  string // "" for the peer
			}{
				{"v1 TCP4", v1("PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n"), "203.0.113.7:51234"},
				{"v1 TCP6", v1("PROXY TCP6 2001:db8::7 ::1 51234 80\r\n"), "[2001:db8::7]:51234"},
				{"v1 TCP6 mapped", v1("PROXY TCP6 ::ffff:203.0.113.7 ::1 51234 80\r\n"), "203.0.113.7:51234"},
				{"v1 TCP6 nat64", v1("PROXY TCP6 64:ff9b::cb00:7107 ::1 51234 80\r\n"), "[64:ff9b::cb00:7107]:51234"},
				{"v1 UNKNOWN", v1("PROXY UNKNOWN\r\n"), ""},
				{"v1 UNKNOWN with addresses", v1("PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n"), ""},
				{"v1 written by go-proxyproto", formatted(t, 1, "198.51.100.4:4000", "127.0.0.1:80"), "198.51.100.4:4000"},
				{"v2 INET", formatted(t, 2, "203.0.113.7:51234", "127.0.0.1:80"), "203.0.113.7:51234"},
				{"v2 INET with TLVs", formatted(t, 2, "203.0.113.7:51234", "127.0.0.1:80", someTLVs...), "203.0.113.7:51234"},
				{"v2 INET6 with TLVs", formatted(t, 2, "[2001:db8::7]:51234", "[::1]:80", someTLVs...), "[2001:db8::7]:51234"},
				{"v2 INET6 mapped", v2(0x21, 0x21, 36, addr6("::ffff:203.0.113.7", "::1", 1, 80)), "203.0.113.7:1"},
				{"v2 LOCAL", v2(0x20, 0x00, 0, nil), ""},
				{"v2 LOCAL with addresses and TLVs", v2(0x20, 0x11, 12+9, append(addr4("203.0.113.7", "127.0.0.1", 1, 2), tlv(0x01, 6, []byte("http/1"))...)), ""},
				{"v2 LOCAL short block", v2(0x20, 0x11, 4, []byte{1, 2, 3, 4}), ""},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					resp := exchange(t, addr, tc.prefix)
					if !strings.HasPrefix(resp, "HTTP/1.1 200") {
						t.Fatalf("refused: %q", resp)
					}
					b := body(resp)
					if tc.start == "" {
						if !strings.Contains(b, "start=127.0.0.1:") || !strings.Contains(b, "via=false") || !strings.Contains(b, "source=peer") {
							t.Fatalf("want the peer as start: %s", b)
						}
						return
					}
					want := fmt.Sprintf("start=%s via=true remote=%s client=%s source=proxy", tc.start, tc.start, netip.MustParseAddrPort(tc.start).Addr())
					if !strings.HasPrefix(b, want) {
						t.Fatalf("got  %s\nwant %s", b, want)
					}
				})
			}
		})
	}
}

// Rule 1: malformed headers get the connection closed, trusted peer or not.
func TestProxyMalformed(t *testing.T) {
	long := "PROXY TCP4 203.0.113.7 127.0.0.1 51234 80" + strings.Repeat(" ", 80) + "\r\n"
	v4 := addr4("203.0.113.7", "127.0.0.1", 1, 80)
	cases := []struct {
		name   string
		prefix []byte
	}{
		{"v1 bad address", v1("PROXY TCP4 203.0.113.300 127.0.0.1 51234 80\r\n")},
		{"v1 hostname", v1("PROXY TCP4 client.example 127.0.0.1 51234 80\r\n")},
		{"v1 family mismatch 4/6", v1("PROXY TCP4 2001:db8::7 127.0.0.1 51234 80\r\n")},
		{"v1 family mismatch 6/4", v1("PROXY TCP6 203.0.113.7 ::1 51234 80\r\n")},
		{"v1 zone", v1("PROXY TCP6 fe80::1%eth0 ::1 51234 80\r\n")},
		{"v1 bad port", v1("PROXY TCP4 203.0.113.7 127.0.0.1 65536 80\r\n")},
		{"v1 leading zero port", v1("PROXY TCP4 203.0.113.7 127.0.0.1 080 80\r\n")},
		{"v1 missing field", v1("PROXY TCP4 203.0.113.7 127.0.0.1 51234\r\n")},
		{"v1 extra field", v1("PROXY TCP4 203.0.113.7 127.0.0.1 51234 80 9\r\n")},
		{"v1 unknown protocol", v1("PROXY UDP4 203.0.113.7 127.0.0.1 51234 80\r\n")},
		{"v1 LF only", v1("PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\n")},
		{"v1 over-long line", v1(long)},
		{"v1 no CRLF at all", v1("PROXY TCP4 203.0.113.7 127.0.0.1 51234 80 " + strings.Repeat("x", 200))},
		{"v1 bad signature", v1("PROXYX TCP4 203.0.113.7 127.0.0.1 51234 80\r\n")},
		{"v2 unknown version", v2(0x31, 0x11, 12, v4)},
		{"v2 unknown command", v2(0x22, 0x11, 12, v4)},
		{"v2 version 1 byte", v2(0x11, 0x11, 12, v4)},
		{"v2 unknown family", v2(0x21, 0x13, 12, v4)},
		{"v2 PROXY UNSPEC", v2(0x21, 0x00, 0, nil)},
		{"v2 PROXY UDP", v2(0x21, 0x12, 12, v4)},
		{"v2 PROXY unix", v2(0x21, 0x31, 216, make([]byte, 216))},
		{"v2 block shorter than addresses", v2(0x21, 0x11, 8, v4[:8])},
		{"v2 over-long block", v2(0x21, 0x11, 0xFFFF, v4)},
		{"v2 TLV past the header", v2(0x21, 0x11, 12+5, append(v4, tlv(0x01, 16, []byte("ab"))...))},
		{"v2 TLV length cut", v2(0x21, 0x11, 12+2, append(v4, 0x01, 0x00))},
		{"v2 LOCAL TLV past the header", v2(0x20, 0x11, 12+5, append(v4, tlv(0x01, 16, []byte("ab"))...))},
	}
	for _, trusted := range [][]netip.Prefix{trustLoopback, trustOther} {
		addr := serveProxy(t, ProxyProtocol{Trusted: trusted, HeaderTimeout: filters.Duration(300 * time.Millisecond)}, nil)
		for _, tc := range cases {
			t.Run(fmt.Sprintf("trusted=%s/%s", trusted[0], tc.name), func(t *testing.T) {
				if resp := exchange(t, addr, tc.prefix); !refused(resp) {
					t.Fatalf("served: %q", resp)
				}
			})
		}
	}
}

// Truncated v2: the header stops and the peer half-closes; with the peer
// silent instead, the timeout ends it (TestProxyHeaderTimeout).
func TestProxyTruncatedV2(t *testing.T) {
	addr := serveProxy(t, ProxyProtocol{Trusted: trustLoopback, HeaderTimeout: filters.Duration(time.Second)}, nil)
	full := v2(0x21, 0x11, 12, addr4("203.0.113.7", "127.0.0.1", 1, 80))
	for _, n := range []int{13, 14, 15, 16, 20, 27} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Write(full[:n])
			c.(*net.TCPConn).CloseWrite()
			if b, _ := io.ReadAll(c); len(b) != 0 {
				t.Fatalf("got %q", b)
			}
		})
	}
}

// Rule 1: a PROXY header from a peer outside proxy_protocol.trusted gets the
// connection closed; without one the peer is served as itself.
func TestProxyUntrustedPeer(t *testing.T) {
	for _, required := range []bool{false, true} {
		addr := serveProxy(t, ProxyProtocol{Trusted: trustOther, Required: required}, nil)
		t.Run(fmt.Sprintf("required=%v", required), func(t *testing.T) {
			for name, prefix := range map[string][]byte{
				"v1":         v1("PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n"),
				"v1 UNKNOWN": v1("PROXY UNKNOWN\r\n"),
				"v2":         formatted(t, 2, "203.0.113.7:51234", "127.0.0.1:80", someTLVs...),
				"v2 LOCAL":   v2(0x20, 0x00, 0, nil),
			} {
				if resp := exchange(t, addr, prefix); !refused(resp) {
					t.Errorf("%s from an untrusted peer served: %q", name, resp)
				}
			}
			resp := exchange(t, addr, nil)
			if !strings.HasPrefix(resp, "HTTP/1.1 200") || !strings.Contains(body(resp), "start=127.0.0.1:") || !strings.Contains(body(resp), "source=peer") {
				t.Fatalf("plain request from an untrusted peer: %q", resp)
			}
		})
	}
}

// Rule 1: with required, a trusted peer that sends no header is refused, at
// once when it sends something else, at header_timeout when it sends nothing.
// The timeout is long (2s) so that "at once" and "at the timeout" stay apart
// on a loaded machine: the bounds say which of the two happened, not how
// fast this machine is.
func TestProxyRequired(t *testing.T) {
	const timeout = 2 * time.Second
	addr := serveProxy(t, ProxyProtocol{Trusted: trustLoopback, Required: true, HeaderTimeout: filters.Duration(timeout)}, nil)
	t0 := time.Now()
	if resp := exchange(t, addr, nil); !refused(resp) {
		t.Fatalf("no header served: %q", resp)
	}
	if d := time.Since(t0); d > timeout/2 {
		t.Fatalf("refusing a request without a header took %s: it waited for the %s timeout", d, timeout)
	}
	if d := silentFor(t, addr, 4*timeout); d < timeout-50*time.Millisecond || d >= 4*timeout {
		t.Fatalf("silent peer closed after %s, want the %s timeout", d, timeout)
	}
	// Not required: a silent trusted peer is served as itself afterwards.
	addr = serveProxy(t, ProxyProtocol{Trusted: trustLoopback, HeaderTimeout: filters.Duration(300 * time.Millisecond)}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A real wait: the header timeout is a socket deadline inside
	// go-proxyproto, with nothing to observe when it fires. Should a stalled
	// machine send the request before it fires, the request is read as one
	// without a header and served the same way.
	time.Sleep(450 * time.Millisecond)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	c.Write([]byte(request))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200") || !strings.Contains(string(b), "via=false") {
		t.Fatalf("late request without header: %q", b)
	}
}

// silentFor connects, sends nothing and returns when the server closed.
func silentFor(t *testing.T, addr string, max time.Duration) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Now()
	c.SetReadDeadline(t0.Add(max))
	io.ReadAll(c)
	return time.Since(t0)
}

// drip sends data one byte every 100ms (the client's pace, not a wait for
// the server) and returns how long the server took to close the
// connection and what it sent back. started is closed once the first byte
// is on its way.
func drip(t *testing.T, addr string, data []byte, started chan<- struct{}) (time.Duration, string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		close(started)
		return 0, ""
	}
	defer c.Close()
	t0 := time.Now()
	go func() {
		for i, b := range data {
			_, err := c.Write([]byte{b})
			if i == 0 {
				close(started)
			}
			if err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	c.SetReadDeadline(t0.Add(10 * time.Second))
	b, _ := io.ReadAll(c)
	return time.Since(t0), string(b)
}

// Rule 1: a peer dripping its header one byte per 100ms is cut off at
// header_timeout at the latest (2s, well before its 4s+ of dripping ends),
// while the same listener accepts and serves other connections meanwhile: they are served
// before the dripping one is cut off.
func TestProxyHeaderTimeout(t *testing.T) {
	header := []byte("PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n" + request)
	v2header := append(formatted(t, 2, "203.0.113.7:51234", "127.0.0.1:80"), request...)
	for _, tc := range []struct {
		name string
		pp   ProxyProtocol
		data []byte
	}{
		{"trusted v1", ProxyProtocol{Trusted: trustLoopback}, header},
		{"trusted v2", ProxyProtocol{Trusted: trustLoopback}, v2header},
		{"trusted required v1", ProxyProtocol{Trusted: trustLoopback, Required: true}, header},
		{"trusted required v2", ProxyProtocol{Trusted: trustLoopback, Required: true}, v2header},
		{"untrusted v1", ProxyProtocol{Trusted: trustOther}, header},
		{"untrusted v2", ProxyProtocol{Trusted: trustOther}, v2header},
		{"nobody trusted v1", ProxyProtocol{}, header},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const timeout = 2 * time.Second
			tc.pp.HeaderTimeout = filters.Duration(timeout)
			addr := serveProxy(t, tc.pp, nil)

			type result struct {
				took time.Duration
				resp string
			}
			slow := make(chan result, 1)
			started := make(chan struct{})
			go func() {
				d, resp := drip(t, addr, tc.data, started)
				slow <- result{d, resp}
			}()

			// Meanwhile, other connections are accepted and served at once.
			<-started
			for range 3 {
				var prefix []byte
				if len(tc.pp.Trusted) > 0 && tc.pp.Trusted[0] == trustLoopback[0] {
					prefix = v1("PROXY TCP4 198.51.100.1 127.0.0.1 1 80\r\n")
				}
				resp := exchange(t, addr, prefix)
				if !strings.HasPrefix(resp, "HTTP/1.1 200") {
					t.Fatalf("a second connection was not served while one drips: %q", resp)
				}
				select {
				case r := <-slow:
					t.Fatalf("the dripping peer was cut off (after %s) before a second connection was served", r.took)
				default:
				}
			}

			r := <-slow
			if r.resp != "" {
				t.Fatalf("the dripping peer got a response: %q", r.resp)
			}
			// go-proxyproto drops a v1 line that arrives in pieces (the
			// PROXY spec lets a receiver refuse partial headers), so a v1
			// drip may end before the timeout; a v2 drip waits for it.
			early := tc.data[0] == 'P'
			if (!early && r.took < timeout-50*time.Millisecond) || r.took > timeout+2*time.Second {
				t.Fatalf("the dripping peer was cut off after %s, want the %s timeout", r.took, timeout)
			}
		})
	}
}

// ConnAddrs never blocks: from ConnContext, in net/http's accept loop, before
// the header has arrived, it answers at once with an invalid start.
func TestConnAddrsDoesNotBlockAcceptLoop(t *testing.T) {
	type seen struct {
		peer, start netip.AddrPort
		took        time.Duration
	}
	ch := make(chan seen, 4)
	addr := serveProxy(t, ProxyProtocol{Trusted: trustLoopback, HeaderTimeout: filters.Duration(time.Minute)},
		func(ctx context.Context, c net.Conn) context.Context {
			t0 := time.Now()
			p, s, _ := ConnAddrs(c)
			ch <- seen{p, s, time.Since(t0)}
			return ConnContext(ctx, c)
		})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A ConnAddrs that waited for the header would wait the whole header
	// timeout (a minute, nothing is sent yet) and then report no start:
	// either bound below tells that from an answer at once, however
	// slow the machine.
	select {
	case s := <-ch:
		if s.took > 20*time.Second || s.start.IsValid() || !s.peer.IsValid() || s.peer.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("ConnAddrs before the header: %+v", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ConnContext was not called: the accept loop is stuck")
	}
	// The header arrives; the handler sees the settled addresses.
	c.SetDeadline(time.Now().Add(2 * time.Second))
	c.Write([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n" + request))
	b, _ := io.ReadAll(c)
	if !strings.Contains(string(b), "start=203.0.113.7:51234 via=true") {
		t.Fatalf("handler: %q", b)
	}
	// A resolver refuses the unsettled start rather than guessing.
	r := newTestResolver(t, "")
	if _, err := r.Resolve(netip.AddrPort{}, nil); err != ErrNoStart {
		t.Fatalf("unsettled start: %v", err)
	}
}

// TLS over a PROXY listener: the header comes before the handshake, and
// ConnAddrs finds it through the *tls.Conn.
func TestProxyUnderTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, s, via := ConnAddrs(ConnFromContext(r.Context()))
		fmt.Fprintf(w, "peer=%s start=%s via=%v tls=%v", p.Addr(), s, via, r.TLS != nil)
	}))
	srv.Config.ConnContext = ConnContext
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Listener = ProxyProtocol{Trusted: trustLoopback}.Listen(srv.Listener)
	srv.StartTLS()
	defer srv.Close()

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	c.Write(formatted(t, 2, "[2001:db8::7]:443", "[::1]:443", someTLVs...))
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "example.com"})
	if _, err := tc.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if want := "peer=127.0.0.1 start=[2001:db8::7]:443 via=true tls=true"; string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

// ConnAddrs on connections that did not come from Listen.
func TestConnAddrsPlainConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if p, s, via := ConnAddrs(a); p.IsValid() || s.IsValid() || via {
		t.Fatalf("pipe: %s %s %v", p, s, via)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			<-done // the client stays connected until the test is over
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, s, via := ConnAddrs(c)
	if p != s || via || p.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("tcp: %s %s %v", p, s, via)
	}
	if ConnFromContext(context.Background()) != nil {
		t.Fatal("ConnFromContext on an empty context")
	}
}

// acceptOne accepts one connection on a Listen listener while send writes
// from a client; it returns the server side.
func acceptOne(t *testing.T, pp ProxyProtocol, send func(c net.Conn)) net.Conn {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := pp.Listen(inner)
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		t.Cleanup(func() { c.Close() })
		send(c)
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// unwrapper is a Read wrapper like the binary's ban check.
type unwrapper struct{ net.Conn }

func (u unwrapper) Unwrap() net.Conn { return u.Conn }

func TestReadHeader(t *testing.T) {
	// A header timeout no stall of a loaded machine reaches: these cases
	// are about what arrives, not when (the last one is about the timeout).
	pp := ProxyProtocol{Trusted: trustLoopback, HeaderTimeout: filters.Duration(20 * time.Second)}
	t.Run("waits for the header and reads nothing more", func(t *testing.T) {
		asked := make(chan struct{})
		c := acceptOne(t, pp, func(c net.Conn) {
			<-asked // the header is sent only after ConnAddrs was asked
			fmt.Fprint(c, "PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\nGET / HTTP/1.1\r\n")
		})
		w := unwrapper{c}
		_, s, _ := ConnAddrs(w)
		close(asked)
		if s.IsValid() {
			t.Fatalf("ConnAddrs before the header: start %s", s)
		}
		p, s, via, err := ReadHeader(w)
		if err != nil || s != netip.MustParseAddrPort("203.0.113.7:51234") || !via || p.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("ReadHeader = %s %s %v %v", p, s, via, err)
		}
		if _, s2, via2 := ConnAddrs(w); s2 != s || !via2 {
			t.Fatalf("ConnAddrs after ReadHeader: %s %v", s2, via2)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line != "GET / HTTP/1.1\r\n" {
			t.Fatalf("first line after the header: %q", line)
		}
	})
	t.Run("malformed header is an error", func(t *testing.T) {
		c := acceptOne(t, pp, func(c net.Conn) { fmt.Fprint(c, "PROXY TCP4 203.0.113.300 127.0.0.1 1 2\r\n") })
		_, s, via, err := ReadHeader(c)
		if err == nil || !strings.Contains(err.Error(), "proxyproto") || via || s.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("ReadHeader = %s %v %v", s, via, err)
		}
		if _, rerr := c.Read(make([]byte, 10)); rerr != err {
			t.Fatalf("Read error %v, ReadHeader error %v", rerr, err)
		}
	})
	t.Run("header from an untrusted peer is an error", func(t *testing.T) {
		c := acceptOne(t, ProxyProtocol{Trusted: trustOther}, func(c net.Conn) { fmt.Fprint(c, "PROXY TCP4 203.0.113.7 127.0.0.1 1 2\r\n") })
		if _, _, _, err := ReadHeader(c); err != proxyproto.ErrSuperfluousProxyHeader {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("half-sent header at the timeout is an error", func(t *testing.T) {
		const timeout = time.Second
		c := acceptOne(t, ProxyProtocol{Trusted: trustLoopback, HeaderTimeout: filters.Duration(timeout)},
			func(c net.Conn) { fmt.Fprint(c, "PRO") })
		t0 := time.Now()
		if _, _, _, err := ReadHeader(c); err != ErrProxyHeaderTimeout {
			t.Fatalf("err %v", err)
		}
		if d := time.Since(t0); d < timeout-50*time.Millisecond || d > timeout+3*time.Second {
			t.Fatalf("took %s, want the %s timeout", d, timeout)
		}
	})
	t.Run("plain connection", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if _, _, _, err := ReadHeader(a); err != nil {
			t.Fatal(err)
		}
	})
}

// Raw gives the socket: its RemoteAddr is the peer and closing it does not
// wait for a header that never comes.
func TestRaw(t *testing.T) {
	c := acceptOne(t, ProxyProtocol{Trusted: trustLoopback, Required: true, HeaderTimeout: filters.Duration(5 * time.Second)}, func(net.Conn) {})
	raw := c.(interface{ Raw() net.Conn }).Raw()
	if _, ok := raw.(*net.TCPConn); !ok {
		t.Fatalf("Raw is %T", raw)
	}
	t0 := time.Now()
	if a := raw.RemoteAddr().(*net.TCPAddr); !a.IP.IsLoopback() {
		t.Fatalf("peer %s", a)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Raw/Close waited %s: for the 5s header timeout", d)
	}
	if c.LocalAddr() == nil {
		t.Fatal("no LocalAddr")
	}
}

// The pass-throughs net/http uses: ReadFrom (sendfile), CloseWrite (before
// closing) and deadlines.
func TestConnPassThroughs(t *testing.T) {
	got := make(chan string, 1)
	c := acceptOne(t, ProxyProtocol{Trusted: trustLoopback}, func(c net.Conn) {
		fmt.Fprint(c, "PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n")
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.(io.ReaderFrom).ReadFrom(strings.NewReader("hello")); n != 5 || err != nil {
		t.Fatalf("ReadFrom = %d, %v", n, err)
	}
	if _, err := c.Write([]byte(" world")); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "hello world" {
		t.Fatalf("client read %q", s)
	}
	if a := c.RemoteAddr().String(); a != "203.0.113.7:51234" {
		t.Fatalf("RemoteAddr %s", a)
	}
	// A read deadline set by the server applies after the header.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read past the deadline")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read error %v, want a timeout", err)
	}
}

// TestConnReadAheadKept: go-proxyproto reads ahead of the header; when Conn
// starts reading the socket directly, not a byte of what was read ahead is
// lost or repeated, with a PROXY header and without one, read in pieces
// smaller and larger than the read-ahead.
func TestConnReadAheadKept(t *testing.T) {
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	for _, tt := range []struct {
		name   string
		pp     ProxyProtocol
		prefix string
		chunk  int
	}{
		{"trusted peer, header, small reads", ProxyProtocol{Trusted: trustLoopback}, "PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n", 7},
		{"trusted peer, header, large reads", ProxyProtocol{Trusted: trustLoopback}, "PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n", 1000},
		{"trusted peer, no header", ProxyProtocol{Trusted: trustLoopback}, "", 7},
		{"untrusted peer", ProxyProtocol{Trusted: trustOther}, "", 13},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := acceptOne(t, tt.pp, func(c net.Conn) {
				c.Write(append([]byte(tt.prefix), payload...))
			})
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, 0, len(payload))
			buf := make([]byte, tt.chunk)
			for len(got) < len(payload) {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("after %d bytes: %v", len(got), err)
				}
				got = append(got, buf[:n]...)
			}
			if string(got) != string(payload) {
				t.Fatalf("read %d bytes that differ from the %d sent", len(got), len(payload))
			}
			if !c.(*Conn).raw.drained.Load() {
				t.Error("3000 bytes read and still reading through go-proxyproto")
			}
		})
	}
}

// TestConnDeadlinesAfterHeader: once the header is settled, read deadlines
// still apply (and can be lifted again), and setting one costs no
// allocation: net/http sets them several times per request.
func TestConnDeadlinesAfterHeader(t *testing.T) {
	next := make(chan struct{})
	c := acceptOne(t, ProxyProtocol{Trusted: trustLoopback}, func(c net.Conn) {
		fmt.Fprint(c, "PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\nfirst")
		<-next
		fmt.Fprint(c, "second")
	})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "first" {
		t.Fatalf("first read: %q %v", buf[:n], err)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		c.SetReadDeadline(time.Time{})
		c.SetDeadline(time.Time{})
	}); allocs != 0 {
		t.Errorf("setting deadlines after the header: %v allocations, want 0", allocs)
	}
	// Were the deadline lost, the read would wait for "second": send it
	// after a while, so that the test fails rather than hangs.
	var once sync.Once
	release := func() { once.Do(func() { close(next) }) }
	defer time.AfterFunc(3*time.Second, release).Stop()
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("read past the deadline")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read error %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})
	release()
	if n, err := io.ReadFull(c, buf[:len("second")]); err != nil || string(buf[:n]) != "second" {
		t.Fatalf("read after lifting the deadline: %q %v", buf[:n], err)
	}
}
