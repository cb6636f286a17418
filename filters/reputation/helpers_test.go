package reputation

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

var t0 = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

// newFilter builds a Filter over files written to a temporary directory
// (name → contents) and closes it when the test ends.
func newFilter(t testing.TB, cfg Config, files map[string]string) *Filter {
	t.Helper()
	return newFilterClock(t, cfg, files, func() time.Time { return t0 })
}

// newFilterClock is newFilter with the clock of the admin API and the ban
// sweeper; tests through Redis use the real one, since Redis expiries are.
func newFilterClock(t testing.TB, cfg Config, files map[string]string, clock func() time.Time) *Filter {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := build(cfg, filters.Env{Dir: dir, IPv6Prefix: 64}, clock)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func req(addr string, now time.Time) *filters.Request {
	a := netip.MustParseAddr(addr)
	return &filters.Request{Client: a, Key: filters.KeyOf(a, 64), Now: now}
}

func deny(r *filters.Request, stage, reason string) filters.Event {
	return filters.Event{Request: r, Verdict: filters.Verdict{Deny: true, Stage: stage, Reason: reason}}
}

// collect returns the samples a filter emits, keyed by name and labels.
func collect(f *Filter) map[string]float64 {
	out := map[string]float64{}
	f.CollectMetrics(func(s filters.Sample) {
		k := s.Name
		for i := 0; i+1 < len(s.Labels); i += 2 {
			k += "," + s.Labels[i] + "=" + s.Labels[i+1]
		}
		out[k] = s.Value
	})
	return out
}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

type netipPrefix = netip.Prefix
