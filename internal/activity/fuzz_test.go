package activity

import (
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edgeguard/edgeguard/filters"
)

// FuzzParseSeconds: every input is a number from 1 to Window or an error
// naming the parameter; never a panic.
func FuzzParseSeconds(f *testing.F) {
	for _, s := range []string{"", "1", "900", "901", "0", "-1", "abc", "1e3", "+5", "0x10", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSeconds(s)
		if err != nil {
			if !strings.Contains(err.Error(), "seconds") {
				t.Fatalf("%q: error %q does not name the parameter", s, err)
			}
			return
		}
		if n < 1 || n > Window {
			t.Fatalf("%q: %d accepted", s, n)
		}
	})
}

// FuzzRecord: whatever a request carries, a refusal is kept within the
// bounds MemoryBytes states, its path has no query, and recording never
// panics.
func FuzzRecord(f *testing.F) {
	f.Add("/login?password=x", "req-1", "waf", "anomaly score 5", "GET", "", int64(3_000_000), 403, 942100, "SQL Injection")
	f.Add(strings.Repeat("é", 300), strings.Repeat("i", 200), "", "", "PROPFIND", "checkout", int64(-5), 0, 0, "")
	f.Add("?", "", "x", strings.Repeat("r", 1000), "", "", int64(1<<62), 999, -1, strings.Repeat("m", 400))
	f.Fuzz(func(t *testing.T, path, id, stage, reason, method, route string, tookNS int64, status, rule int, msg string) {
		r := New(4)
		end := time.Unix(1_780_000_000, 0)
		e := &Entry{Arrived: end.Add(-time.Duration(tookNS)), End: end, Client: netip.MustParseAddr("2001:db8::1"),
			Source: "header", ID: id, Route: route, Method: method, Path: path, Status: status, Stage: stage, Reason: reason,
			RuleIDs: []int{rule, rule}, RuleMessages: []string{msg},
			Chain: []filters.Stage{{Filter: named("reputation")}, {Filter: named(stage)}},
			Notes: []filters.Note{{Stage: "reputation", Text: shadowNote + reason}}}
		r.Record(e)
		r.RulesFired(end, e.RuleIDs, e.RuleMessages)
		_, _ = r.Latency(end, 60)
		if stage == "" {
			if len(r.Blocked()) != 0 {
				t.Fatal("a request no stage refused is in the refusal ring")
			}
			return
		}
		b := r.Blocked()[0]
		if strings.Contains(b.Path, "?") {
			t.Fatalf("path %q keeps a query", b.Path)
		}
		for _, c := range []struct {
			kept, from string
			max        int
		}{{b.Path, path, maxPath}, {b.ID, id, maxID}, {b.Reason, reason, maxReason}, {b.Method, method, maxMethod}, {b.Route, route, maxRoute}, {b.Stage, stage, maxStage}} {
			if len(c.kept) > c.max+len("…") {
				t.Fatalf("%d bytes kept, bound %d", len(c.kept), c.max)
			}
			if utf8.ValidString(c.from) && !utf8.ValidString(c.kept) {
				t.Fatalf("cutting %q made %q, invalid UTF-8", c.from, c.kept)
			}
		}
		if len(b.Rules) > maxRules || len(b.Stages) > maxVerdicts || len(b.Stages) == 0 || b.Stages[len(b.Stages)-1].Verdict != VerdictDeny {
			t.Fatalf("rules %d, stages %+v", len(b.Rules), b.Stages)
		}
	})
}
