package filters

import (
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// fixed is a stage that always answers v and records that it ran.
type fixed struct {
	name string
	v    Verdict
	ran  *[]string
}

func (f fixed) Name() string { return f.name }
func (f fixed) Check(*Request) Verdict {
	*f.ran = append(*f.ran, f.name)
	return f.v
}

func TestChainRun(t *testing.T) {
	deny := Verdict{Deny: true, Status: 429, Reason: "rate", RetryAfter: time.Second}
	hdr := Verdict{Headers: http.Header{"Ratelimit": {"r=1"}}}
	tests := []struct {
		name      string
		stages    []Stage // filled by names below
		specs     []spec
		wantRan   []string
		wantDeny  bool
		wantStage string
		wantSeen  []string // stages whose denies observers saw
		wantShad  []bool
		wantHdr   []string
	}{
		{name: "empty chain allows", wantRan: nil},
		{name: "all allow", specs: []spec{{"a", Allow, ModeBlock}, {"b", Allow, ModeBlock}}, wantRan: []string{"a", "b"}},
		{name: "first deny stops", specs: []spec{{"a", Allow, ModeBlock}, {"b", deny, ModeBlock}, {"c", Allow, ModeBlock}},
			wantRan: []string{"a", "b"}, wantDeny: true, wantStage: "b", wantSeen: []string{"b"}, wantShad: []bool{false}},
		{name: "shadow deny is reported and allowed", specs: []spec{{"a", deny, ModeShadow}, {"b", Allow, ModeBlock}},
			wantRan: []string{"a", "b"}, wantSeen: []string{"a"}, wantShad: []bool{true}},
		{name: "shadow then block", specs: []spec{{"a", deny, ModeShadow}, {"b", deny, ModeBlock}},
			wantRan: []string{"a", "b"}, wantDeny: true, wantStage: "b", wantSeen: []string{"a", "b"}, wantShad: []bool{true, false}},
		{name: "off stage never runs", specs: []spec{{"a", deny, ModeOff}, {"b", Allow, ModeBlock}}, wantRan: []string{"b"}},
		{name: "empty mode means block", specs: []spec{{"a", deny, ""}}, wantRan: []string{"a"}, wantDeny: true, wantStage: "a", wantSeen: []string{"a"}, wantShad: []bool{false}},
		{name: "order is the config's", specs: []spec{{"c", Allow, ModeBlock}, {"a", Allow, ModeBlock}, {"b", Allow, ModeBlock}}, wantRan: []string{"c", "a", "b"}},
		{name: "allow headers reach the final verdict", specs: []spec{{"q", hdr, ModeBlock}, {"b", Allow, ModeBlock}}, wantRan: []string{"q", "b"}, wantHdr: []string{"r=1"}},
		{name: "allow headers ride on a later deny", specs: []spec{{"q", hdr, ModeBlock}, {"b", deny, ModeBlock}}, wantRan: []string{"q", "b"},
			wantDeny: true, wantStage: "b", wantSeen: []string{"b"}, wantShad: []bool{false}, wantHdr: []string{"r=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran, seen []string
			var shadows []bool
			var stages []Stage
			for _, s := range tt.specs {
				stages = append(stages, Stage{Filter: fixed{name: s.name, v: s.v, ran: &ran}, Mode: s.mode})
			}
			obs := ObserverFunc(func(e Event) {
				seen = append(seen, e.Verdict.Stage)
				shadows = append(shadows, e.Verdict.Shadow)
			})
			var timed []string
			c := NewChain(stages, []Observer{obs}, func(stage string, _ time.Duration, _ Verdict) { timed = append(timed, stage) })
			v := c.Run(&Request{Now: time.Unix(0, 0)})
			if !slices.Equal(ran, tt.wantRan) {
				t.Errorf("ran %v, want %v", ran, tt.wantRan)
			}
			if !slices.Equal(timed, tt.wantRan) {
				t.Errorf("timed %v, want %v", timed, tt.wantRan)
			}
			if v.Deny != tt.wantDeny || v.Stage != tt.wantStage {
				t.Errorf("verdict deny=%v stage=%q, want deny=%v stage=%q", v.Deny, v.Stage, tt.wantDeny, tt.wantStage)
			}
			if !slices.Equal(seen, tt.wantSeen) || !slices.Equal(shadows, tt.wantShad) {
				t.Errorf("observers saw %v shadow %v, want %v %v", seen, shadows, tt.wantSeen, tt.wantShad)
			}
			if got := v.Headers.Values("Ratelimit"); !slices.Equal(got, tt.wantHdr) {
				t.Errorf("headers %v, want %v", got, tt.wantHdr)
			}
		})
	}
}

type spec struct {
	name string
	v    Verdict
	mode Mode
}

func TestChainDoesNotMutateStageHeaders(t *testing.T) {
	var ran []string
	shared := http.Header{"A": {"1"}}
	second := http.Header{"A": {"2"}}
	c := NewChain([]Stage{
		{Filter: fixed{name: "x", v: Verdict{Headers: shared}, ran: &ran}},
		{Filter: fixed{name: "y", v: Verdict{Headers: second}, ran: &ran}},
		{Filter: fixed{name: "z", v: Verdict{Headers: http.Header{"A": {"3"}}}, ran: &ran}},
	}, nil, nil)
	for range 3 {
		v := c.Run(&Request{})
		if got := v.Headers.Values("A"); !slices.Equal(got, []string{"1", "2", "3"}) {
			t.Fatalf("headers %v", got)
		}
	}
	if got := shared.Values("A"); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("a stage's header map was changed: %v", got)
	}
	if got := second.Values("A"); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("a stage's header map was changed: %v", got)
	}
}

// TestChainDenyDoesNotMutateStageHeaders: a deny's own headers (a
// limiter's shared 429 map) are merged with the earlier stages' into a new
// map, never into the stage's.
func TestChainDenyDoesNotMutateStageHeaders(t *testing.T) {
	var ran []string
	denyHdr := http.Header{"Ratelimit": {"r=0"}}
	c := NewChain([]Stage{
		{Filter: fixed{name: "x", v: Verdict{Headers: http.Header{"A": {"1"}}}, ran: &ran}},
		{Filter: fixed{name: "y", v: Verdict{Deny: true, Status: 429, Headers: denyHdr}, ran: &ran}},
	}, nil, nil)
	for range 3 {
		v := c.Run(&Request{})
		if !v.Deny || v.Headers.Get("A") != "1" || v.Headers.Get("Ratelimit") != "r=0" {
			t.Fatalf("deny %+v, want both stages' headers", v)
		}
	}
	if len(denyHdr) != 1 {
		t.Fatalf("the denying stage's header map was changed: %v", denyHdr)
	}
}

func TestExplainRunsEveryStageAndReportsNothing(t *testing.T) {
	var ran []string
	reported := 0
	c := NewChain([]Stage{
		{Filter: fixed{name: "a", v: Verdict{Deny: true}, ran: &ran}, Mode: ModeBlock},
		{Filter: fixed{name: "b", v: Verdict{Deny: true}, ran: &ran}, Mode: ModeShadow},
		{Filter: fixed{name: "c", v: Allow, ran: &ran}, Mode: ModeBlock},
	}, []Observer{ObserverFunc(func(Event) { reported++ })}, nil)
	vs := c.Explain(&Request{})
	if !slices.Equal(ran, []string{"a", "b", "c"}) || len(vs) != 3 {
		t.Fatalf("ran %v, %d verdicts", ran, len(vs))
	}
	if vs[0].Stage != "a" || vs[0].Shadow || !vs[1].Shadow || vs[2].Deny {
		t.Fatalf("verdicts %+v", vs)
	}
	if reported != 0 {
		t.Fatalf("explain reported %d denies to observers", reported)
	}
}

func TestRequestFinishRunsDeferredInReverseOnce(t *testing.T) {
	var order []int
	r := &Request{}
	r.Defer(func() { order = append(order, 1) })
	r.Defer(func() { order = append(order, 2) })
	r.Finish()
	r.Finish()
	if !slices.Equal(order, []int{2, 1}) {
		t.Fatalf("order %v", order)
	}
}

func TestKeyOf(t *testing.T) {
	tests := []struct {
		addr string
		bits int
		want string
	}{
		{"1.2.3.4", 64, "1.2.3.4"},
		{"::ffff:1.2.3.4", 64, "1.2.3.4"},
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::"},
		{"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::"},
		{"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6"},
		{"2001:db8:1:2:3:4:5:6", 0, "2001:db8:1:2::"},
	}
	for _, tt := range tests {
		k := KeyOf(netip.MustParseAddr(tt.addr), tt.bits)
		if got := k.String(); got != tt.want {
			t.Errorf("KeyOf(%s, %d) = %s, want %s", tt.addr, tt.bits, got, tt.want)
		}
	}
	if KeyOf(netip.MustParseAddr("2001:db8::1"), 64) != KeyOf(netip.MustParseAddr("2001:db8::ffff:1"), 64) {
		t.Error("two addresses of one /64 have different keys")
	}
}

func BenchmarkChainEmpty(b *testing.B) {
	c := NewChain(nil, nil, nil)
	r := &Request{}
	b.ReportAllocs()
	for b.Loop() {
		c.Run(r)
	}
}

func TestReportLateReachesObservers(t *testing.T) {
	var seen []Verdict
	c := NewChain(nil, []Observer{ObserverFunc(func(e Event) { seen = append(seen, e.Verdict) })}, nil)
	r := &Request{}
	r.ReportLate("waf", Verdict{Status: 403, Reason: "before the chain ran"})
	if len(seen) != 0 {
		t.Fatal("a request that no chain ran reported to observers")
	}
	c.Run(r)
	r.ReportLate("waf", Verdict{Status: 403, Reason: "response rule"})
	if len(seen) != 1 || !seen[0].Deny || seen[0].Stage != "waf" || seen[0].Reason != "response rule" {
		t.Fatalf("observers saw %+v", seen)
	}
}

// instant is a stage that records the r.Now it was handed.
type instant struct {
	name string
	seen *[]time.Time
}

func (s instant) Name() string { return s.name }
func (s instant) Check(r *Request) Verdict {
	*s.seen = append(*s.seen, r.Now)
	return Allow
}

func TestChainClockMovesNowBeforeLaterStages(t *testing.T) {
	arrival := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var seen []time.Time
	stages := []Stage{{Filter: instant{"a", &seen}}, {Filter: instant{"b", &seen}}, {Filter: instant{"c", &seen}}}

	// Without a clock every stage decides at the arrival time.
	NewChain(stages, nil, nil).Run(&Request{Now: arrival})
	if want := []time.Time{arrival, arrival, arrival}; !slices.Equal(seen, want) {
		t.Fatalf("no clock: stages saw %v, want %v", seen, want)
	}

	// With one, each later stage decides at the clock's reading: the first
	// at arrival, the next ones after 3 s and 5 s spent before them; after
	// the chain, r.Now is the reading at the last stage's end.
	seen = nil
	readings := []time.Time{arrival.Add(3 * time.Second), arrival.Add(5 * time.Second), arrival.Add(6 * time.Second)}
	clock := func() time.Time {
		t := readings[0]
		readings = readings[1:]
		return t
	}
	r := &Request{Now: arrival}
	NewChain(stages, nil, nil).WithClock(clock).Run(r)
	if want := []time.Time{arrival, arrival.Add(3 * time.Second), arrival.Add(5 * time.Second)}; !slices.Equal(seen, want) {
		t.Fatalf("clock: stages saw %v, want %v", seen, want)
	}
	if want := arrival.Add(6 * time.Second); !r.Now.Equal(want) {
		t.Fatalf("clock: after the chain r.Now is %v, want %v", r.Now, want)
	}

	// Timed, the stages' durations come from the same readings, one at
	// the start and one at each stage's end: 1 s, 2 s and 4 s.
	seen = nil
	readings = []time.Time{arrival, arrival.Add(time.Second), arrival.Add(3 * time.Second), arrival.Add(7 * time.Second)}
	var took []time.Duration
	timer := func(_ string, d time.Duration, _ Verdict) { took = append(took, d) }
	NewChain(stages, nil, timer).WithClock(clock).Run(&Request{Now: arrival})
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(took, want) {
		t.Fatalf("timed: durations %v, want %v", took, want)
	}
	if want := []time.Time{arrival, arrival.Add(time.Second), arrival.Add(3 * time.Second)}; !slices.Equal(seen, want) {
		t.Fatalf("timed: stages saw %v, want %v", seen, want)
	}
	if len(readings) != 0 {
		t.Fatalf("timed: %d readings left, want every one used (one per stage end and one at the start)", len(readings))
	}
}
