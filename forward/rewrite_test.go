package forward

import (
	"net/netip"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

// TestClientString: the client as text, taken from X-Forwarded-For only
// when that is the client alone, and then without a new string.
func TestClientString(t *testing.T) {
	for _, tt := range []struct {
		client, forwardedFor, want string
	}{
		{"203.0.113.7", "203.0.113.7", "203.0.113.7"},
		{"203.0.113.7", "203.0.113.7, 10.0.0.1", "203.0.113.7"},
		{"203.0.113.7", "203.0.113.70", "203.0.113.7"},
		{"203.0.113.7", "", "203.0.113.7"},
		{"2001:db8::1", "2001:db8::1", "2001:db8::1"},
		{"2001:db8::1", "2001:DB8::1", "2001:db8::1"},
	} {
		fr := &filters.Request{Client: netip.MustParseAddr(tt.client), ForwardedFor: tt.forwardedFor}
		if got := clientString(fr); got != tt.want {
			t.Errorf("clientString(%s, X-Forwarded-For %q) = %q, want %q", tt.client, tt.forwardedFor, got, tt.want)
		}
	}
	fr := &filters.Request{Client: netip.MustParseAddr("203.0.113.7"), ForwardedFor: "203.0.113.7"}
	if n := testing.AllocsPerRun(100, func() { clientString(fr) }); n != 0 {
		t.Errorf("clientString of the lone client: %v allocations, want 0", n)
	}
}
