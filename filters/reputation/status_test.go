package reputation

import (
	"testing"
	"time"
)

// TestStatusAt: an address's standing is what Check decides on it, in
// Check's order (allow list, then ban, then deny list), with the ban in
// force for a banned one, IPv4-mapped forms included; an expired ban is
// no standing.
func TestStatusAt(t *testing.T) {
	f := newFilter(t, Config{Lists: []List{{File: "allow.txt", Action: ActionAllow}, {File: "deny.txt", Action: ActionDeny}}},
		map[string]string{"allow.txt": "198.51.100.7\n", "deny.txt": "203.0.113.0/24\n"})
	for _, target := range []string{"198.51.100.0/24", "203.0.113.9", "2001:db8::/64"} {
		p, _ := ParseTarget(target, 64)
		if _, err := f.BanAt(t0, p, time.Hour, "test"); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		addr   string
		at     time.Duration
		want   StatusState
		banned string
	}{
		{"198.51.100.7", time.Minute, StatusAllowListed, ""}, // allow wins over the /24 ban
		{"198.51.100.8", time.Minute, StatusBanned, "198.51.100.0/24"},
		{"::ffff:198.51.100.8", time.Minute, StatusBanned, "198.51.100.0/24"},
		{"203.0.113.9", time.Minute, StatusBanned, "203.0.113.9/32"}, // the ban before the deny list
		{"203.0.113.10", time.Minute, StatusDenyListed, ""},
		{"2001:db8::42", time.Minute, StatusBanned, "2001:db8::/64"},
		{"192.0.2.1", time.Minute, StatusNone, ""},
		{"198.51.100.8", 2 * time.Hour, StatusNone, ""}, // expired
	}
	for _, tt := range tests {
		st := f.StatusAt(t0.Add(tt.at), netipAddr(tt.addr))
		if st.State != tt.want {
			t.Errorf("%s at +%v: %v, want %v", tt.addr, tt.at, st.State, tt.want)
			continue
		}
		if (st.Ban != nil) != (tt.banned != "") || st.Ban != nil && st.Ban.Prefix.String() != tt.banned {
			t.Errorf("%s: ban %+v, want one of %q", tt.addr, st.Ban, tt.banned)
		}
		if v := f.Check(req(netipAddr(tt.addr).Unmap().String(), t0.Add(tt.at))); v.Deny != (tt.want == StatusBanned || tt.want == StatusDenyListed) {
			t.Errorf("%s: Check denies %v, but the status is %v", tt.addr, v.Deny, st.State)
		}
	}
	for s, want := range map[StatusState]string{StatusNone: "none", StatusAllowListed: "allowlisted", StatusBanned: "banned", StatusDenyListed: "denylisted"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}
