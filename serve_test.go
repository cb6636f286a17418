package edgeguard

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

// TestAddHeadersSharesCapped: the stages' values are handed on without a
// copy, but an append to the response's header cannot write into the
// stage's array.
func TestAddHeadersSharesCapped(t *testing.T) {
	vals := make([]string, 1, 4)
	vals[0] = "limit=10"
	src := http.Header{"Ratelimit": vals, "Ratelimit-Policy": {"10;w=60"}}
	dst := http.Header{"Ratelimit-Policy": {"5;w=1"}}
	addHeaders(dst, src)
	if got := dst.Values("Ratelimit-Policy"); len(got) != 2 || got[0] != "5;w=1" || got[1] != "10;w=60" {
		t.Fatalf("existing header: %q, want both values in order", got)
	}
	dst["Ratelimit"] = append(dst["Ratelimit"], "later")
	if spare := vals[:2][1]; spare != "" {
		t.Fatalf("an append to the response header wrote %q into the stage's array", spare)
	}
	if got := dst.Values("Ratelimit"); len(got) != 2 || got[0] != "limit=10" {
		t.Fatalf("response header %q", got)
	}
}

// TestRequestIDForm: a made-up id is 24 lower-case hex digits (96 random
// bits) and new each time.
func TestRequestIDForm(t *testing.T) {
	g := mustGuard(t, "stages: []\n")
	r := httptest.NewRequest("GET", "/", nil)
	form := regexp.MustCompile(`^[0-9a-f]{24}$`)
	seen := map[string]bool{}
	for range 100 {
		id := g.requestID(r, netip.MustParseAddr("192.0.2.1"))
		if !form.MatchString(id) {
			t.Fatalf("request id %q is not 24 lower-case hex digits", id)
		}
		if seen[id] {
			t.Fatalf("request id %q made twice", id)
		}
		seen[id] = true
	}
}

// TestLogDenyFilteredCostsNothing: with debug off, a deny costs the log
// nothing, not even building the arguments it would have logged.
func TestLogDenyFilteredCostsNothing(t *testing.T) {
	g := mustGuard(t, "stages: []\n")
	e := filters.Event{
		Request: &filters.Request{ID: "r1", Client: netip.MustParseAddr("192.0.2.1")},
		Verdict: filters.Verdict{Deny: true, Stage: "waf", Reason: "anomaly"},
	}
	if allocs := testing.AllocsPerRun(100, func() { g.logDeny(e) }); allocs != 0 {
		t.Errorf("logDeny with debug off: %v allocations, want 0", allocs)
	}
}
