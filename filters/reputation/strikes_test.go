package reputation

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

func TestStrikesReachThreshold(t *testing.T) {
	f := newFilter(t, Config{
		Strikes: Strikes{Threshold: 3, Window: filters.Duration(time.Minute), PerStage: map[string]StrikeRule{
			"waf": {Threshold: 2},
		}},
		Ban: BanPolicy{TTL: filters.Duration(10 * time.Minute)},
	}, nil)
	steps := []struct {
		at     time.Duration
		addr   string
		stage  string
		banned bool // after this strike
	}{
		// Global count: volumetric and quota share it.
		{0, "192.0.2.1", "volumetric", false},
		{10 * time.Second, "192.0.2.1", "quota", false},
		// The window runs from the first strike: at 61s a new count starts.
		{61 * time.Second, "192.0.2.1", "volumetric", false},
		{62 * time.Second, "192.0.2.1", "volumetric", false},
		{63 * time.Second, "192.0.2.1", "volumetric", true},
		// waf has its own count with threshold 2 and the global window.
		{0, "192.0.2.2", "waf", false},
		{30 * time.Second, "192.0.2.2", "volumetric", false}, // global count, apart
		{59 * time.Second, "192.0.2.2", "waf", true},
		// Other clients' strikes do not add up.
		{0, "192.0.2.3", "waf", false},
		{time.Second, "192.0.2.4", "waf", false},
		// IPv6 strikes add up per /64 key.
		{0, "2001:db8:0:1::1", "waf", false},
		{time.Second, "2001:db8:0:1::2", "waf", true},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		f.Observe(deny(req(s.addr, now), s.stage, "r"))
		v := f.Check(req(s.addr, now))
		if v.Deny != s.banned {
			t.Fatalf("step %d (%s %s at %s): banned = %v, want %v", i, s.addr, s.stage, s.at, v.Deny, s.banned)
		}
		if s.banned && (v.Reason != ReasonBanned || v.StatusCode() != 403) {
			t.Fatalf("step %d: verdict %+v, want 403 banned", i, v)
		}
	}
	// The /64 ban catches every address in the prefix, not only those seen.
	if v := f.Check(req("2001:db8:0:1:ffff:ffff:ffff:ffff", t0.Add(2*time.Second))); !v.Deny {
		t.Error("/64 ban does not cover the whole prefix")
	}
	if v := f.Check(req("2001:db8:0:2::1", t0.Add(2*time.Second))); v.Deny {
		t.Error("/64 ban leaks into the next /64")
	}
	m := collect(f)
	if m["reputation_bans_total,source=waf"] != 2 || m["reputation_bans_total,source=volumetric"] != 1 {
		t.Errorf("bans by source: %v", m)
	}
	if m["reputation_strikes_total,stage=waf,shadow=false"] != 6 {
		t.Errorf("waf strikes = %v, want 6", m["reputation_strikes_total,stage=waf,shadow=false"])
	}
}

func TestObserveIgnores(t *testing.T) {
	f := newFilter(t, Config{Strikes: Strikes{Threshold: 1},
		Lists: []List{{File: "allow.txt", Action: ActionAllow}}},
		map[string]string{"allow.txt": "192.0.2.9\n"})
	shadow := deny(req("192.0.2.1", t0), "waf", "r")
	shadow.Verdict.Shadow = true
	own := deny(req("192.0.2.2", t0), stageName, ReasonDenyList)
	allow := filters.Event{Request: req("192.0.2.3", t0), Verdict: filters.Verdict{Stage: "waf"}}
	overload := deny(req("192.0.2.4", t0), "waf", "waf small lane: queue_full")
	overload.Verdict.Overload = true
	for _, e := range []filters.Event{shadow, own, allow, overload, deny(req("192.0.2.9", t0), "waf", "r"), {}} {
		f.Observe(e)
		if e.Request != nil && f.Check(e.Request).Deny {
			t.Errorf("event %+v banned its client", e.Verdict)
		}
	}
	m := collect(f)
	if m["reputation_strikes_total,stage=waf,shadow=true"] != 1 {
		t.Errorf("shadow strikes not counted: %v", m)
	}
	if _, ok := m["reputation_strikes_total,stage=reputation,shadow=false"]; ok {
		t.Error("own denies counted as strikes")
	}
}

func TestEscalation(t *testing.T) {
	const ttl = 10 * time.Minute
	f := newFilter(t, Config{
		Strikes: Strikes{Threshold: 1},
		Ban:     BanPolicy{TTL: filters.Duration(ttl), MaxTTL: filters.Duration(35 * time.Minute), Memory: filters.Duration(time.Hour)},
	}, nil)
	const addr = "198.51.100.4"
	steps := []struct {
		strikeAt  time.Duration
		wantTTL   time.Duration // 0: no new ban (one already in force)
		wantLevel int
	}{
		{0, ttl, 0},                             // ban for ttl: until 10m
		{5 * time.Minute, 0, 0},                 // still banned: no strike counted
		{15 * time.Minute, 2 * ttl, 1},          // repeat within memory after expiry → 2×ttl: until 35m
		{40 * time.Minute, 35 * time.Minute, 2}, // 4×ttl = 40m capped at max_ttl 35m: until 75m
		{76 * time.Minute, 35 * time.Minute, 3}, // still capped: until 111m
		// memory is 1h after the end (111m): at 171m+1s the history is forgotten.
		{171*time.Minute + time.Second, ttl, 0},
	}
	for i, s := range steps {
		now := t0.Add(s.strikeAt)
		before := f.BansAt(now)
		f.Observe(deny(req(addr, now), "waf", "sqli"))
		bans := f.BansAt(now)
		if s.wantTTL == 0 {
			if len(bans) != 1 || len(before) != 1 || bans[0] != before[0] {
				t.Fatalf("step %d: ban changed while one was in force: %v → %v", i, before, bans)
			}
			continue
		}
		if len(bans) != 1 {
			t.Fatalf("step %d: %d bans, want 1", i, len(bans))
		}
		b := bans[0]
		if got := b.Expires.Sub(b.Created); got != s.wantTTL || b.Level != s.wantLevel || !b.Created.Equal(now) {
			t.Fatalf("step %d: ban ttl %s level %d created %s, want ttl %s level %d created %s",
				i, got, b.Level, b.Created, s.wantTTL, s.wantLevel, now)
		}
		if b.Source != "waf" || b.Reason != "sqli" || b.Prefix.String() != addr+"/32" {
			t.Fatalf("step %d: ban %+v", i, b)
		}
		// Enforced until the end, not a nanosecond after.
		if !f.Check(req(addr, b.Expires.Add(-time.Nanosecond))).Deny || f.Check(req(addr, b.Expires)).Deny {
			t.Fatalf("step %d: ban not enforced exactly until %s", i, b.Expires)
		}
	}
}

func TestShadowModeBansNothing(t *testing.T) {
	var logs bytes.Buffer
	f, err := New(Config{Mode: filters.ModeShadow, Strikes: Strikes{Threshold: 2}},
		filters.Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 4 {
		f.Observe(deny(req("192.0.2.1", t0.Add(time.Duration(i)*time.Second)), "waf", "xss"))
	}
	if bans := f.BansAt(t0); len(bans) != 0 {
		t.Fatalf("shadow mode made bans: %v", bans)
	}
	if v := f.Check(req("192.0.2.1", t0)); v.Deny {
		t.Errorf("shadow mode denied a client with no ban: %+v", v)
	}
	if !strings.Contains(logs.String(), "would ban") || !strings.Contains(logs.String(), "target=192.0.2.1") {
		t.Errorf("would-be ban not logged: %s", logs.String())
	}
	if m := collect(f); m["reputation_shadow_bans_total,source=waf"] != 2 || m["reputation_strikes_total,stage=waf,shadow=false"] != 4 {
		t.Errorf("shadow metrics: %v", m)
	}
	// An operator's ban is stored in shadow mode; Check reports it as a
	// shadow deny and RefuseConn closes nothing.
	p, _ := ParseTarget("192.0.2.1", 64)
	if _, err := f.BanAt(t0, p, time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if v := f.Check(req("192.0.2.1", t0)); !v.Deny || !v.Shadow {
		t.Errorf("shadow verdict = %+v, want a deny marked Shadow", v)
	}
	if f.RefuseConn(netipAddr("192.0.2.1"), t0) {
		t.Error("shadow mode refused a connection")
	}
}

func TestRefuseConn(t *testing.T) {
	f := newFilter(t, Config{Lists: []List{{File: "deny.txt", Action: ActionDeny}}},
		map[string]string{"deny.txt": "203.0.113.0/24\n"})
	p, _ := ParseTarget("2001:db8::/64", 64)
	if _, err := f.BanAt(t0, p, time.Minute, ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		at   time.Duration
		want bool
	}{
		{"203.0.113.5", 0, true},
		{"::ffff:203.0.113.5", 0, true},
		{"2001:db8::99", 0, true},
		{"2001:db8::99", time.Minute, false}, // the ban has expired
		{"192.0.2.1", 0, false},
	}
	for _, tt := range tests {
		if got := f.RefuseConn(netipAddr(tt.addr), t0.Add(tt.at)); got != tt.want {
			t.Errorf("RefuseConn(%s, +%s) = %v, want %v", tt.addr, tt.at, got, tt.want)
		}
	}
	if m := collect(f); m["reputation_conn_refused_total"] != 3 {
		t.Errorf("refusals counted %v, want 3", m["reputation_conn_refused_total"])
	}
}

func TestNestedBansAndSweep(t *testing.T) {
	f := newFilter(t, Config{}, nil)
	wide, _ := ParseTarget("192.0.2.0/24", 64)
	narrow, _ := ParseTarget("192.0.2.7", 64)
	f.BanAt(t0, wide, time.Hour, "")
	f.BanAt(t0, narrow, time.Minute, "")
	// After the /32 expires (unswept), the /24 still holds.
	if !f.Check(req("192.0.2.7", t0.Add(2*time.Minute))).Deny {
		t.Fatal("an expired /32 hides the /24 ban in force over it")
	}
	if n := f.bans.sweep(t0.Add(2 * time.Minute)); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	if bans := f.BansAt(t0.Add(2 * time.Minute)); len(bans) != 1 || bans[0].Prefix != wide {
		t.Fatalf("after sweep: %v", bans)
	}
	if _, ok := f.UnbanAt(t0.Add(2*time.Minute), wide); !ok {
		t.Fatal("unban of the /24 found nothing")
	}
	if f.Check(req("192.0.2.7", t0.Add(2*time.Minute))).Deny {
		t.Fatal("still banned after the unban")
	}
}

func TestReloadCarriesState(t *testing.T) {
	old := newFilter(t, Config{Strikes: Strikes{Threshold: 3}}, nil)
	old.Observe(deny(req("192.0.2.1", t0), "waf", "r"))
	old.Observe(deny(req("192.0.2.1", t0), "waf", "r"))
	p, _ := ParseTarget("198.51.100.0/24", 64)
	old.BanAt(t0, p, time.Hour, "")
	nf, err := New(Config{Strikes: Strikes{Threshold: 3}}, filters.Env{Previous: old})
	if err != nil {
		t.Fatal(err)
	}
	defer nf.Close()
	old.Close() // the owner closes the previous instance after the swap
	if !nf.Check(req("198.51.100.1", t0)).Deny {
		t.Error("ban lost on reload")
	}
	nf.Observe(deny(req("192.0.2.1", t0), "waf", "r")) // third strike
	if !nf.Check(req("192.0.2.1", t0)).Deny {
		t.Error("strike counts lost on reload")
	}
	if m := collect(nf); m["reputation_bans_total,source=operator"] != 1 {
		t.Errorf("counters not carried over: %v", m)
	}
}
