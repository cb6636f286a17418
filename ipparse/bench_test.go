package ipparse

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

var benchStart = netip.MustParseAddrPort("10.0.0.1:1234")

// chainHeader is an n-entry X-Forwarded-For whose leftmost entry is the
// client and every other entry a trusted hop: the walk examines all n.
func chainHeader(n int) string {
	var b strings.Builder
	b.WriteString("203.0.113.7")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, ", 10.0.%d.%d", i/250%250, i%250+1)
	}
	return b.String()
}

var benchHeaders = []struct {
	name, header, value string
	start               netip.AddrPort
}{
	{"XFF5", "X-Forwarded-For", "203.0.113.7, 10.0.0.5, 10.0.0.4, 10.0.0.3, 10.0.0.2", benchStart},
	{"XFF5-IPv6", "X-Forwarded-For", "2001:db8:1::7, [2001:db8:ffff::5]:80, 2001:db8:ffff::4, 2001:db8:ffff::3, 2001:db8:ffff::2", benchStart},
	{"Forwarded5", "Forwarded", `for=203.0.113.7;proto=https, for=10.0.0.5, for="10.0.0.4:80", for=10.0.0.3, for=10.0.0.2;by=10.0.0.1`, benchStart},
	{"XRealIP", "X-Real-IP", "203.0.113.7", benchStart},
	{"UntrustedPeer", "X-Forwarded-For", "203.0.113.7, 10.0.0.5, 10.0.0.4, 10.0.0.3, 10.0.0.2", netip.MustParseAddrPort("198.51.100.1:1")},
}

func BenchmarkResolve(b *testing.B) {
	for _, bh := range benchHeaders {
		b.Run(bh.name, func(b *testing.B) {
			r := newTestResolver(b, bh.header)
			h := http.Header{r.Header(): {bh.value}}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if _, err := r.Resolve(bh.start, h); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// The walk is linear in the entries it examines, and capped: with the
// default bounds (32 hops, 8KiB) a 100-entry header stops after 33 entries
// and a 10,000-entry one (about 110KB) is refused before any parsing; with
// the caps lifted the cost grows with the entries.
func BenchmarkResolveEntries(b *testing.B) {
	for _, capped := range []bool{true, false} {
		for _, n := range []int{10, 100, 10000} {
			name := fmt.Sprintf("uncapped/%d", n)
			if capped {
				name = fmt.Sprintf("capped/%d", n)
			}
			b.Run(name, func(b *testing.B) {
				r := newTestResolver(b, "X-Forwarded-For")
				if !capped {
					r.maxHops, r.maxHeaderBytes = 1<<30, 1<<30
				}
				h := http.Header{"X-Forwarded-For": {chainHeader(n)}}
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					r.Resolve(benchStart, h)
				}
				reportCPU(b, cpu)
				// After the loop: b.Loop's first call clears earlier metrics.
				switch _, err := r.Resolve(benchStart, h); {
				case err == nil:
					b.ReportMetric(float64(n), "entries-walked")
				case errors.Is(err, ErrTooManyHops):
					b.ReportMetric(float64(r.maxHops+1), "entries-walked")
				default: // ErrHeaderTooLarge: refused before parsing
					b.ReportMetric(0, "entries-walked")
				}
			})
		}
	}
}

func BenchmarkForwardedFor(b *testing.B) {
	r := newTestResolver(b, "X-Forwarded-For")
	h := http.Header{"X-Forwarded-For": {"6.6.6.6, 203.0.113.7, 10.0.0.5, 10.0.0.4, 10.0.0.3, 10.0.0.2"}}
	res, err := r.Resolve(benchStart, h)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		r.ForwardedFor(res, benchStart.Addr(), h)
	}
	reportCPU(b, cpu)
}

// Resolving allocates nothing, whatever the header kind and whether the
// walk ends at a client, at garbage or at a bound.
func TestResolveAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	cases := append([]struct {
		name, header, value string
		start               netip.AddrPort
	}{}, benchHeaders...)
	cases = append(cases,
		struct {
			name, header, value string
			start               netip.AddrPort
		}{"garbage", "X-Forwarded-For", "203.0.113.7, proxy.example.com, 10.0.0.2", benchStart},
		struct {
			name, header, value string
			start               netip.AddrPort
		}{"too many hops", "X-Forwarded-For", chainHeader(100), benchStart},
		struct {
			name, header, value string
			start               netip.AddrPort
		}{"too large", "X-Forwarded-For", chainHeader(10000), benchStart},
	)
	for _, tc := range cases {
		r := newTestResolver(t, tc.header)
		h := http.Header{r.Header(): {tc.value}}
		if n := testing.AllocsPerRun(100, func() { r.Resolve(tc.start, h) }); n != 0 {
			t.Errorf("%s: %v allocations per Resolve", tc.name, n)
		}
	}
	r := newTestResolver(t, "")
	h := http.Header{"X-Forwarded-For": {"6.6.6.6, 203.0.113.7, 10.0.0.5, 10.0.0.4, 10.0.0.3, 10.0.0.2"}}
	res, _ := r.Resolve(benchStart, h)
	if n := testing.AllocsPerRun(100, func() { r.ForwardedFor(res, benchStart.Addr(), h) }); n != 1 {
		t.Errorf("ForwardedFor: %v allocations, want 1 (the string)", n)
	}
}

// naiveRightmost is the baseline for BenchmarkResolve: the X-Forwarded-For
// walk as it is usually written by hand (split on commas, trim, parse each
// entry from the right, skip trusted ones by scanning a prefix list), with
// none of the bounds, port forms or multi-line handling of Resolve.
func naiveRightmost(trusted []netip.Prefix, peer netip.Addr, h http.Header) netip.Addr {
	client := peer
	parts := strings.Split(strings.Join(h.Values("X-Forwarded-For"), ","), ",")
	for i := len(parts) - 1; i >= 0; i-- {
		isTrusted := false
		for _, p := range trusted {
			if p.Contains(client) {
				isTrusted = true
				break
			}
		}
		if !isTrusted {
			return client
		}
		a, err := netip.ParseAddr(strings.TrimSpace(parts[i]))
		if err != nil {
			return client
		}
		client = a
	}
	return client
}

// BenchmarkNaiveXFF is that baseline on BenchmarkResolve's XFF5 header.
func BenchmarkNaiveXFF(b *testing.B) {
	h := http.Header{"X-Forwarded-For": {benchHeaders[0].value}}
	if got := naiveRightmost(testTrusted, benchStart.Addr(), h); got != netip.MustParseAddr("203.0.113.7") {
		b.Fatalf("baseline finds %s", got)
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		naiveRightmost(testTrusted, benchStart.Addr(), h)
	}
	reportCPU(b, cpu)
}
