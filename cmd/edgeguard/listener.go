package main

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/edgeguard/edgeguard/ipparse"
)

// refusingListener closes connections from banned or denied addresses
// before anything is read from them: no HTTP parsing, no TLS handshake. A
// direct peer is checked in Accept; a connection behind a PROXY header is
// checked once the header has been read, on the connection's own goroutine,
// so a slow header never holds up the accept loop.
type refusingListener struct {
	net.Listener
	proxyTrusted func(netip.Addr) bool      // may send a PROXY header
	refuse       func(addr netip.Addr) bool // counts what it refuses (reputation_conn_refused_total)
}

func (l *refusingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := addrOf(c)
		if l.proxyTrusted(peer) {
			return &refusingConn{Conn: c, l: l}, nil
		}
		if l.refuse(peer) {
			closeRaw(c)
			continue
		}
		return c, nil
	}
}

// closeRaw closes the socket under a PROXY-protocol wrapper without reading
// the header that the wrapper would otherwise wait for.
func closeRaw(c net.Conn) {
	if r, ok := c.(interface{ Raw() net.Conn }); ok {
		_ = r.Raw().Close()
		return
	}
	_ = c.Close()
}

func addrOf(c net.Conn) netip.Addr {
	if r, ok := c.(interface{ Raw() net.Conn }); ok {
		c = r.Raw()
	}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

var errRefused = errors.New("edgeguard: connection refused: client banned")

// refusingConn defers the check until the first Read, after the PROXY
// header has told who the client is.
type refusingConn struct {
	net.Conn
	l    *refusingListener
	once sync.Once
	err  error
}

func (c *refusingConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		// Wait for the PROXY header here, on the connection's own
		// goroutine; a header the listener refuses is refused by the
		// Read that follows, so only the ban is ours to check.
		_, start, _, err := ipparse.ReadHeader(c.Conn)
		if err == nil && c.l.refuse(start.Addr()) {
			c.err = errRefused
			closeRaw(c.Conn)
		}
	})
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

// Raw exposes the PROXY wrapper's socket to ipparse.ConnAddrs.
func (c *refusingConn) Unwrap() net.Conn { return c.Conn }
