package activity

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// t0 is the instant the tests start at: a second that is not a multiple
// of Window, so that ring positions and windows are not all zero.
var t0 = time.Unix(1_780_000_123, 250_000_000)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func served(end time.Time, client string) *Entry {
	return &Entry{Arrived: end.Add(-3 * time.Millisecond), End: end, Client: netip.MustParseAddr(client),
		Source: "peer", ID: "id", Method: "GET", Path: "/", Status: 200}
}

func refused(end time.Time, client, id, stage string) *Entry {
	e := served(end, client)
	e.ID, e.Stage, e.Status, e.Reason = id, stage, 403, "banned"
	return e
}

// TestOutcomeAndStage: each request counts once, under one outcome and
// one stage: a refusal under its stage, the rest under "forward".
func TestOutcomeAndStage(t *testing.T) {
	shadowNotes := []filters.Note{{Stage: "waf", Text: "shadow deny: anomaly score 5"}}
	tests := []struct {
		name  string
		e     Entry
		want  Outcome
		stage string
	}{
		{"served", Entry{Status: 200}, Allowed, Forwarded},
		{"redirect", Entry{Status: 302}, Allowed, Forwarded},
		{"client error from upstream", Entry{Status: 404}, Allowed, Forwarded},
		{"refused", Entry{Status: 403, Stage: "waf"}, Denied, "waf"},
		{"refused at intake", Entry{Status: 431, Stage: "client_ip"}, Denied, "client_ip"},
		{"dropped", Entry{Status: 0, Stage: "waf"}, Denied, "waf"},
		{"refused with a 503", Entry{Status: 503, Stage: "waf"}, Denied, "waf"},
		{"upstream failed", Entry{Status: 502}, Errored, Forwarded},
		{"upstream's own 500", Entry{Status: 500}, Errored, Forwarded},
		{"last status before the errors", Entry{Status: 499}, Allowed, Forwarded},
		{"shadow", Entry{Status: 200, Notes: shadowNotes}, Shadow, Forwarded},
		{"shadow and upstream failed", Entry{Status: 504, Notes: shadowNotes}, Errored, Forwarded},
		{"other notes", Entry{Status: 200, Notes: []filters.Note{{Stage: "quota", Text: "store unavailable: allowed (on_error allow)"}}}, Allowed, Forwarded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(0)
			e := tt.e
			e.Arrived, e.End = at(0), at(0)
			r.Record(&e)
			p := r.Series(at(0), 1)[0]
			for o := range numOutcomes {
				want := uint32(0)
				if o == tt.want {
					want = 1
				}
				if p.Outcomes[o] != want {
					t.Errorf("outcome %d counted %d, want %d", o, p.Outcomes[o], want)
				}
			}
			if len(p.ByStage) != 1 || p.ByStage[tt.stage] != 1 {
				t.Errorf("by stage %v, want {%s: 1}", p.ByStage, tt.stage)
			}
		})
	}
}

// TestSeriesRollover walks the ring over fixed instants: a bucket counts
// its own second only, is cleared when its slot comes round again 900
// seconds later, and a request older than the second its slot holds now is
// dropped rather than counted in the wrong second.
func TestSeriesRollover(t *testing.T) {
	r := New(0)
	for range 3 {
		r.Record(served(at(0), "192.0.2.1"))
	}
	r.Record(served(at(1), "192.0.2.1"))
	r.Record(served(at(Window), "192.0.2.1"))   // at(0)'s slot
	r.Record(served(at(0), "192.0.2.1"))        // too late: its slot holds at(Window) now
	r.Record(served(at(Window+1), "192.0.2.2")) // at(1)'s slot

	tests := []struct {
		now  time.Time
		n    int
		want map[int64]uint32 // allowed by second offset; every other second 0
	}{
		{at(0), 1, map[int64]uint32{}}, // cleared: the slot counts at(Window)
		{at(1), 2, map[int64]uint32{}}, // both cleared
		{at(Window), Window, map[int64]uint32{Window: 1}},
		{at(Window + 1), Window, map[int64]uint32{Window: 1, Window + 1: 1}},
		{at(Window + 1), 1, map[int64]uint32{Window + 1: 1}},
		{at(2*Window + 5), Window, map[int64]uint32{}}, // all of it older than the window
	}
	for _, tt := range tests {
		pts := r.Series(tt.now, tt.n)
		if len(pts) != tt.n {
			t.Fatalf("now %d, %d seconds: %d points", tt.now.Unix()-t0.Unix(), tt.n, len(pts))
		}
		for i, p := range pts {
			off := p.Unix - t0.Unix()
			if want := tt.now.Unix() - int64(tt.n-1-i); p.Unix != want {
				t.Fatalf("point %d is second %d, want %d (oldest first, one per second)", i, p.Unix, want)
			}
			if p.Outcomes[Allowed] != tt.want[off] || p.ByStage[Forwarded] != tt.want[off] {
				t.Errorf("now %d: second %d counts %d (by stage %v), want %d", tt.now.Unix()-t0.Unix(), off, p.Outcomes[Allowed], p.ByStage, tt.want[off])
			}
		}
	}
}

// TestSeriesStageNames: names get an index each on first use; past
// maxStages-1 of them, the rest are counted together as OtherStage.
func TestSeriesStageNames(t *testing.T) {
	r := New(0)
	for i := range maxStages + 5 {
		e := refused(at(0), "192.0.2.1", "x", fmt.Sprintf("stage%d", i))
		r.Record(e)
	}
	p := r.Series(at(0), 1)[0]
	if len(p.ByStage) != maxStages {
		t.Errorf("%d stage names, want %d: %v", len(p.ByStage), maxStages, p.ByStage)
	}
	if p.ByStage[OtherStage] != 6 || p.ByStage["stage0"] != 1 || p.ByStage["stage14"] != 1 {
		t.Errorf("by stage %v, want stage0..stage14 once each and %s 6 times", p.ByStage, OtherStage)
	}
}

// TestRecordConcurrent: requests recorded from many goroutines at once are
// all counted (run with -race).
func TestRecordConcurrent(t *testing.T) {
	r := New(0)
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				e := served(at(i%3), fmt.Sprintf("192.0.2.%d", w))
				if i%10 == 0 {
					e = refused(at(i%3), fmt.Sprintf("192.0.2.%d", w), fmt.Sprint(w, "-", i), "volumetric")
				}
				r.Record(e)
				r.RulesFired(at(i%3), []int{942100}, []string{"SQL Injection"})
			}
		})
	}
	wg.Wait()
	var allowed, denied uint32
	for _, p := range r.Series(at(2), 3) {
		allowed += p.Outcomes[Allowed]
		denied += p.Outcomes[Denied]
	}
	if allowed+denied != workers*each || denied != workers*each/10 {
		t.Errorf("counted %d allowed and %d denied, want %d and %d", allowed, denied, workers*each*9/10, workers*each/10)
	}
	var total uint64
	for _, c := range r.TopClients(at(2)) {
		total += c.Count
	}
	if total != workers*each {
		t.Errorf("top clients count %d requests, want %d", total, workers*each)
	}
	if rules := r.TopRules(at(2)); len(rules) != 1 || rules[0].Count != workers*each {
		t.Errorf("rules %v, want 942100 counted %d times", rules, workers*each)
	}
}

// TestLatencyWindow: the percentiles cover the seconds asked for only.
func TestLatencyWindow(t *testing.T) {
	r := New(0)
	for i := range 100 {
		e := served(at(0), "192.0.2.1")
		e.Arrived = e.End.Add(-time.Duration(i+1) * time.Millisecond)
		r.Record(e)
	}
	slow := served(at(-61), "192.0.2.1")
	slow.Arrived = slow.End.Add(-30 * time.Second)
	r.Record(slow)
	p50, p99 := r.Latency(at(0), 60)
	if p50 < 50*(1-LatencyError) || p50 > 50*(1+LatencyError) || p99 < 99*(1-LatencyError) || p99 > 99*(1+LatencyError) {
		t.Errorf("p50 %.2f ms, p99 %.2f ms; want 50 and 99 within %.2f%%", p50, p99, LatencyError*100)
	}
	if _, p99 := r.Latency(at(0), 62); p99 < 100*(1-LatencyError) || p99 > 100*(1+LatencyError) {
		t.Errorf("with the slow request in the span: p99 %.2f, want 100 (rank 100 of 101)", p99)
	}
	if p50, p99 := r.Latency(at(200), 60); p50 != 0 || p99 != 0 {
		t.Errorf("no requests in the span: %v %v, want 0 0", p50, p99)
	}
	// at(Window) reuses at(0)'s bucket: the 100 requests of at(0) are gone.
	quick := served(at(Window), "192.0.2.1")
	quick.Arrived = quick.End.Add(-time.Millisecond)
	r.Record(quick)
	if _, p99 := r.Latency(at(Window), 1); p99 < 1-LatencyError || p99 > 1+LatencyError {
		t.Errorf("after the bucket's reuse: p99 %.2f ms, want the one request's 1 ms", p99)
	}
}

// TestMemoryBytes: the bound is what the docs state (doc.go and
// RATIONALE.md say "about 3.1 MB"; change them with the sizes), and grows
// with k only through the top lists.
func TestMemoryBytes(t *testing.T) {
	def := New(0).MemoryBytes()
	if def < 3_000_000 || def > 3_150_000 {
		t.Errorf("MemoryBytes %d with the default k: the docs say about 3.1 MB", def)
	}
	if big := New(128).MemoryBytes(); big <= def {
		t.Errorf("k=128: %d bytes, not more than k=64's %d", big, def)
	}
}

// TestMemoryBoundHolds fills every part of a Recorder at its worst (a
// 200,000 distinct clients, refusals with every string at its
// longest, more rules and stages than are kept) and measures the heap it
// holds afterwards against MemoryBytes.
func TestMemoryBoundHolds(t *testing.T) {
	if raceDetector {
		t.Skip("the race detector's allocations blur the heap figures")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := New(0)
	long := strings.Repeat("x", 4096)
	var chain []filters.Stage
	var notes []filters.Note
	for i := range 12 {
		name := fmt.Sprintf("stage-with-a-long-name-%d%s", i, long[:40])
		chain = append(chain, filters.Stage{Filter: named(name)})
		notes = append(notes, filters.Note{Stage: name, Text: shadowNote + long})
	}
	ids := make([]int, 40)
	msgs := make([]string, 40)
	for i := range 200_000 {
		for j := range ids {
			ids[j], msgs[j] = i*40+j, long
		}
		e := &Entry{Arrived: at(i / 100), End: at(i / 100), Client: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
			Source: long, ID: long, Route: long, Method: long, Path: "/" + long, Status: 403,
			Stage: chain[11].Filter.Name(), Reason: long, RuleIDs: ids, RuleMessages: msgs, Chain: chain, Notes: notes}
		if i%100 != 0 {
			e.Stage, e.RuleIDs, e.Chain, e.Notes = "", nil, nil, nil // most served: only the series and the clients
		}
		r.Record(e)
		if i%100 == 0 {
			r.RulesFired(e.End, ids, msgs)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if held > int64(r.MemoryBytes()) {
		t.Errorf("the recorder holds %d bytes of heap, more than MemoryBytes %d", held, r.MemoryBytes())
	}
	t.Logf("heap held at the worst: %d bytes; MemoryBytes %d", held, r.MemoryBytes())
	runtime.KeepAlive(r)
}

// TestBlockedStagesAndSecrets: a refusal keeps what the console lists and
// the verdicts of the stages that ran, and nothing of the request beyond
// the path; the path loses its query and is cut at maxPath bytes.
func TestBlockedStagesAndSecrets(t *testing.T) {
	chain := []filters.Stage{{Filter: named("reputation")}, {Filter: named("volumetric")}, {Filter: named("waf")}, {Filter: named("quota")}}
	long := "/" + strings.Repeat("é", 200) // 401 bytes
	tests := []struct {
		name     string
		path     string
		notes    []filters.Note
		stage    string
		wantPath string
		verdicts []string
	}{
		{"query stripped", "/login?password=hunter2&token=abc", nil, "waf", "/login", []string{"reputation:allow", "volumetric:allow", "waf:deny"}},
		{"long path cut on a rune boundary", long, nil, "waf", long[:255] + "…", []string{"reputation:allow", "volumetric:allow", "waf:deny"}},
		{"shadow stage before", "/x", []filters.Note{{Stage: "volumetric", Text: "shadow deny: rate"}}, "waf", "/x", []string{"reputation:allow", "volumetric:shadow_deny", "waf:deny"}},
		{"first stage", "/x", nil, "reputation", "/x", []string{"reputation:deny"}},
		{"refused at intake", "/x", nil, "client_ip", "/x", []string{"client_ip:deny"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(0)
			e := refused(at(0), "203.0.113.7", "req-1", tt.stage)
			e.Path, e.Notes, e.Chain = tt.path, tt.notes, chain
			e.RuleIDs, e.RuleMessages = []int{942100, 949110}, []string{"SQL Injection Attack Detected via libinjection"}
			r.Record(e)
			b, ok := r.FindBlocked("req-1")
			if !ok {
				t.Fatal("refusal not found by id")
			}
			if b.Path != tt.wantPath {
				t.Errorf("path %q, want %q", b.Path, tt.wantPath)
			}
			var got []string
			for _, v := range b.Stages {
				got = append(got, v.Stage+":"+v.Verdict)
			}
			if strings.Join(got, " ") != strings.Join(tt.verdicts, " ") {
				t.Errorf("verdicts %v, want %v", got, tt.verdicts)
			}
			last := b.Stages[len(b.Stages)-1]
			if last.Reason != "banned" || len(last.Rules) != 2 || last.Rules[0].Message == "" || last.Rules[1].Message != "" {
				t.Errorf("refusing stage's verdict %+v: want its reason and both rules, the first with its message", last)
			}
		})
	}
}

// named is a filter that only has a name.
type named string

func (n named) Name() string                           { return string(n) }
func (n named) Check(*filters.Request) filters.Verdict { return filters.Allow }
