package activity

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkRecord is the recorder's cost per finished request: an allowed
// one (the common case; it must not allocate) from a few clients, one
// from a flood of distinct clients (every request a Space-Saving
// replacement), and a refusal. Run with -cpu 1,2 to see the contention of
// parallel recording.
func BenchmarkRecord(b *testing.B) {
	r := New(0)
	start := time.Unix(1_780_000_000, 0)
	cases := []struct {
		name    string
		clients int
		stage   string
	}{{"allowed", 16, ""}, {"allowed-distinct", 1 << 20, ""}, {"refused", 16, "waf"}}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				e := Entry{Source: "peer", ID: "0123456789abcdef01234567", Method: "GET", Path: "/api/items", Status: 200, Stage: bc.stage, Reason: "anomaly score 5"}
				i := 0
				for pb.Next() {
					i++
					e.End = start.Add(time.Duration(i) * time.Millisecond)
					e.Arrived = e.End.Add(-time.Duration(i%5000) * time.Microsecond)
					c := i % bc.clients
					e.Client = netip.AddrFrom4([4]byte{10, byte(c >> 16), byte(c >> 8), byte(c)})
					r.Record(&e)
				}
			})
		})
	}
}
