package refused

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// A dial is refused at once, and the port cannot be taken by a listener
// while the test holds it.
func TestAddrRefusesAndIsHeld(t *testing.T) {
	addr := Addr(t)
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s connected, want connection refused", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("another listener took %s while it is held", addr)
	}
}
