package reputation

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestRefuseConnAtAccept shows the accept-time contract on a real listener:
// a banned client's connection is closed before a single response byte,
// while a clean client is served.
func TestRefuseConnAtAccept(t *testing.T) {
	f := newFilter(t, Config{}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			addr := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
			if f.RefuseConn(addr, time.Now()) {
				c.Close()
				continue
			}
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
			c.Close()
		}
	}()
	read := func() []byte {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		b, _ := io.ReadAll(c)
		return b
	}
	if got := read(); len(got) == 0 {
		t.Fatal("clean client got no response")
	}
	if _, err := f.BanAt(time.Now(), netip.MustParsePrefix("127.0.0.1/32"), time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("banned client got %q", got)
	}
	if m := collect(f); m["reputation_conn_refused_total"] != 1 {
		t.Errorf("refusals = %v, want 1", m["reputation_conn_refused_total"])
	}
}
