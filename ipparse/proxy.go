package ipparse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

var (
	// ErrProxyAddress: a trusted peer's PROXY header (v2 PROXY command)
	// carried no TCP over IPv4/IPv6 source: UDP, a Unix socket, or an address
	// that is not one. The connection is refused: the header claims a client
	// that cannot be used.
	ErrProxyAddress = errors.New("ipparse: PROXY header without a TCP/IP source address")
	// ErrProxyHeaderTimeout: a peer was still sending what starts like a
	// PROXY header when header_timeout expired. The connection is refused.
	ErrProxyHeaderTimeout = errors.New("ipparse: PROXY header not received within header_timeout")
)

// Listen wraps inner so that its connections follow the PROXY protocol rule:
//
//   - a peer in Trusted may open with a PROXY v1 or v2 header; its source
//     address (v1 TCP4/TCP6, v2 PROXY over INET/INET6 TCP) becomes the
//     connection's start address; v1 UNKNOWN and v2 LOCAL keep the peer. With
//     Required, a trusted peer that sends no header is refused;
//   - a PROXY header from any other peer gets the connection refused; those
//     peers are otherwise served as usual;
//   - a malformed header (bad address, family mismatch, over-long v1 line,
//     truncated or over-long v2 block, a TLV running past the header, an
//     unknown version or command) gets the connection refused;
//   - a peer still sending a header when HeaderTimeout expires is refused.
//
// Refused means the first Read and every Write fail, so net/http closes the
// connection without writing a response. Accept never reads from a
// connection: the header is read by the first Read (or RemoteAddr) in the
// connection's own goroutine, so a slow peer never holds up other accepts.
//
// The parsing is go-proxyproto's; Listen adds the trust policy, TLV and
// address checks, and the cut-off of partial headers at HeaderTimeout.
func (c ProxyProtocol) Listen(inner net.Listener) net.Listener {
	c = c.WithDefaults()
	trusted := newPrefixSet(c.Trusted)
	matched := proxyproto.USE
	if c.Required {
		matched = proxyproto.REQUIRE
	}
	return &listener{pl: &proxyproto.Listener{
		Listener: recordingListener{inner},
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if trusted.contains(addrPortOf(o.Upstream).Addr()) {
				return matched, nil
			}
			// REJECT without an error: the peer is served, unless it sends a
			// PROXY header, which fails its first read.
			return proxyproto.REJECT, nil
		},
		ValidateHeader:    validateHeader,
		ReadHeaderTimeout: c.HeaderTimeout.D(),
	}}
}

type listener struct {
	pl *proxyproto.Listener
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.pl.Accept()
	if err != nil {
		return nil, err
	}
	pc, ok := c.(*proxyproto.Conn)
	if !ok {
		return c, nil // SKIP: not a policy Listen uses
	}
	raw, ok := pc.Raw().(*rawConn)
	if !ok {
		return c, nil
	}
	return &Conn{pc: pc, raw: raw, peer: addrPortOf(raw.RemoteAddr())}, nil
}

func (l *listener) Close() error   { return l.pl.Close() }
func (l *listener) Addr() net.Addr { return l.pl.Addr() }

// validateHeader adds to go-proxyproto's parsing what the rule needs: TLVs
// that fit in the header, and for the PROXY command a TCP source address.
func validateHeader(h *proxyproto.Header) error {
	if _, err := h.TLVs(); err != nil {
		return fmt.Errorf("ipparse: PROXY header TLVs: %w", err)
	}
	if h.Command.IsLocal() {
		return nil // LOCAL (v1 UNKNOWN): the peer stays the start
	}
	if _, ok := headerSource(h); !ok {
		return ErrProxyAddress
	}
	return nil
}

// headerSource returns the TCP source address of a PROXY-command header.
func headerSource(h *proxyproto.Header) (netip.AddrPort, bool) {
	if h.TransportProtocol != proxyproto.TCPv4 && h.TransportProtocol != proxyproto.TCPv6 {
		return netip.AddrPort{}, false
	}
	src, _, ok := h.TCPAddrs()
	if !ok || src == nil {
		return netip.AddrPort{}, false
	}
	a, ok := netip.AddrFromSlice(src.IP)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(src.Port)), true
}

// Conn is a connection accepted by a Listen listener. Its first Read reads
// the PROXY header (if any) under the header timeout; RemoteAddr returns the
// start address (the PROXY source, or the peer) and blocks until the header
// has been read, at most the header timeout. LocalAddr is the socket's own
// address. Use ConnAddrs for a look that never blocks.
//
// Once the header is settled, Conn steps aside: writes and deadlines go
// straight to the socket, and so do reads once go-proxyproto has handed over
// the bytes it read ahead with the header. go-proxyproto's own layer would
// otherwise sit under every byte, and its SetReadDeadline allocates on every
// call, which net/http makes several times per request.
type Conn struct {
	pc   *proxyproto.Conn
	raw  *rawConn
	peer netip.AddrPort

	once  sync.Once
	done  atomic.Bool // settle ran; start and via are set
	ok    atomic.Bool // settle ran and accepted the connection
	err   error
	start netip.AddrPort
	via   bool
}

// settle reads the PROXY header (through go-proxyproto, once), records the
// start address and keeps the error that refuses the connection, if any.
func (c *Conn) settle() error {
	c.once.Do(func() {
		h := c.pc.ProxyHeader()
		// An empty read returns go-proxyproto's header error, or nil; it
		// reads nothing more (rawConn answers empty reads itself).
		_, err := c.pc.Read(nil)
		c.raw.recording.Store(false)
		if err == nil && h == nil && c.raw.partialSignature() {
			// go-proxyproto took the timeout for "no header" and would hand
			// the half-sent header to the HTTP parser; refuse instead.
			err = ErrProxyHeaderTimeout
		}
		c.err = err
		c.start = c.peer
		if err == nil && h != nil && h.Command.IsProxy() {
			if src, ok := headerSource(h); ok {
				c.start, c.via = src, true
			}
		}
		c.ok.Store(err == nil)
		c.done.Store(true)
	})
	return c.err
}

func (c *Conn) Read(b []byte) (int, error) {
	if c.raw.drained.Load() {
		return c.raw.Conn.Read(b)
	}
	if err := c.settle(); err != nil {
		return 0, err
	}
	return c.pc.Read(b)
}

func (c *Conn) Write(b []byte) (int, error) {
	if c.ok.Load() {
		return c.raw.Conn.Write(b)
	}
	if err := c.settle(); err != nil {
		return 0, err
	}
	return c.pc.Write(b)
}

// ReadFrom lets io.Copy to the connection use the socket's own ReadFrom
// (sendfile, splice).
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.settle(); err != nil {
		return 0, err
	}
	return c.raw.ReadFrom(r)
}

// CloseWrite half-closes the socket when it supports it, as net/http does
// before closing a connection.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.raw.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *Conn) Close() error { return c.pc.Close() }

// Raw returns the socket under the PROXY layer, as go-proxyproto's Conn.Raw
// does: its RemoteAddr is the TCP peer and closing it never waits for the
// header. Reading from it bypasses the header handling.
func (c *Conn) Raw() net.Conn { return c.raw.Conn }

// RemoteAddr returns the start address: the PROXY source when a trusted peer
// sent one, else the peer. It waits for the header (at most the timeout).
func (c *Conn) RemoteAddr() net.Addr {
	c.settle()
	if c.start.IsValid() {
		return net.TCPAddrFromAddrPort(c.start)
	}
	return c.raw.RemoteAddr()
}

// LocalAddr returns the socket's local address; it does not wait for the
// header.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// SetDeadline and SetReadDeadline go through go-proxyproto until the header
// is settled: it keeps the read deadline to restore once the header has been
// read under its own timeout. After that the socket's is all there is.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.done.Load() {
		return c.raw.Conn.SetDeadline(t)
	}
	return c.pc.SetDeadline(t)
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.done.Load() {
		return c.raw.Conn.SetReadDeadline(t)
	}
	return c.pc.SetReadDeadline(t)
}

func (c *Conn) SetWriteDeadline(t time.Time) error { return c.raw.Conn.SetWriteDeadline(t) }

// ConnAddrs returns the TCP peer of c, the start address the client-IP rule
// begins from (the PROXY source when a trusted peer sent one, else the
// peer), and whether it came from a PROXY header. c is a connection from a
// Listen listener, possibly under wrappers that expose it through NetConn
// (*tls.Conn) or Unwrap, or any other connection (then start is its
// RemoteAddr).
//
// ConnAddrs never blocks. In a handler the header has always been read (the
// request came through it). Called before that (from http.Server.ConnContext
// or ConnState in the accept loop, or from a Read wrapper before its first
// Read) on a Listen connection, it returns the peer and an invalid start,
// which Resolve refuses with ErrNoStart: waiting there could let one slow
// peer stall every accept. On the connection's own goroutine, ReadHeader
// waits for the header instead.
func ConnAddrs(c net.Conn) (peer, start netip.AddrPort, viaProxy bool) {
	if pc := listenConn(c); pc != nil {
		if !pc.done.Load() {
			return pc.peer, netip.AddrPort{}, false
		}
		return pc.peer, pc.start, pc.via
	}
	p := addrPortOf(c.RemoteAddr())
	return p, p, false
}

// ReadHeader waits until the PROXY header of c has been read (at most
// header_timeout) and returns what ConnAddrs returns then, with the error
// that refuses the connection: a PROXY header from an untrusted peer, a
// malformed or half-sent one, none where one is required. For connections
// that did not come from Listen it is ConnAddrs. It reads no more than the
// header, so a Read wrapper can check the client (a ban) before the first
// byte of HTTP or TLS is read. Call it on the connection's own goroutine,
// never in the accept loop.
func ReadHeader(c net.Conn) (peer, start netip.AddrPort, viaProxy bool, err error) {
	if pc := listenConn(c); pc != nil {
		err = pc.settle()
		return pc.peer, pc.start, pc.via, err
	}
	peer, start, viaProxy = ConnAddrs(c)
	return peer, start, viaProxy, nil
}

// listenConn finds the Listen connection under c's wrappers, or nil.
func listenConn(c net.Conn) *Conn {
	for c != nil {
		switch x := c.(type) {
		case *Conn:
			return x
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		case interface{ Unwrap() net.Conn }:
			c = x.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

type connKey struct{}

// ConnContext is an http.Server.ConnContext that stores the connection for
// ConnFromContext (and so ResolveRequest). It does not touch c.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// ConnFromContext returns the connection ConnContext stored, or nil.
func ConnFromContext(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	return c
}

// addrPortOf returns a as an unmapped netip.AddrPort, or the zero value when
// it is not an IP address.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch x := a.(type) {
	case *net.TCPAddr:
		ap = x.AddrPort()
	case nil:
		return netip.AddrPort{}
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return netip.AddrPort{}
		}
	}
	return netip.AddrPortFrom(ap.Addr().WithZone("").Unmap(), ap.Port())
}

// recordingListener hands go-proxyproto connections that remember how their
// first bytes arrived, so that a header cut off by the timeout is told apart
// from a peer that sent nothing.
type recordingListener struct{ net.Listener }

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &rawConn{Conn: c}
	rc.recording.Store(true)
	return rc, nil
}

// rawConn records, while the header is being read, the first bytes read and
// whether a read timed out; it answers empty reads without touching the
// socket. Only the goroutine reading the header touches
// head and timedOut, and settle reads them after that read has returned.
//
// A read that reaches rawConn after the header is settled tells that
// go-proxyproto has handed over everything it read ahead (it reads the
// socket again only once its buffer is empty, and never buffers again):
// drained is set, and Conn reads the socket directly from then on.
type rawConn struct {
	net.Conn
	recording atomic.Bool
	drained   atomic.Bool
	timedOut  bool
	n         int
	head      [16]byte
}

func (c *rawConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil // settle's probe for the header error; no socket I/O
	}
	if !c.recording.Load() {
		c.drained.Store(true)
		return c.Conn.Read(b)
	}
	n, err := c.Conn.Read(b)
	if c.recording.Load() {
		c.n += copy(c.head[c.n:], b[:n])
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.timedOut = true
		}
	}
	return n, err
}

// ReadFrom keeps the socket's ReadFrom reachable through the wrapper.
func (c *rawConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// partialSignature reports whether the header read timed out after the peer
// had sent the beginning of a PROXY v1 or v2 signature.
func (c *rawConn) partialSignature() bool {
	if !c.timedOut || c.n == 0 {
		return false
	}
	for _, sig := range [][]byte{proxyproto.SIGV1, proxyproto.SIGV2} {
		n := min(c.n, len(sig))
		if bytes.Equal(c.head[:n], sig[:n]) {
			return true
		}
	}
	return false
}
