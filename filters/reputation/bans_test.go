package reputation

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// strikeBansIn counts the bans of the table that strikes made, the count
// the store keeps against max_bans.
func strikeBansIn(s *banStore) int {
	n := 0
	for _, b := range s.table.Load().All() {
		if counted(b) {
			n++
		}
	}
	return n
}

// TestStrikeBansAreCapped is the IPv6 rotation attack: one client walking
// the /64s of a /48 earns one ban per /64. At max_bans strike bans no new
// one is made, the refusals are counted and logged once per watch_interval,
// operator bans still go in, and a slot comes back when a ban is lifted or
// swept.
func TestStrikeBansAreCapped(t *testing.T) {
	var logs bytes.Buffer
	cfg := Config{
		MaxBans:       3,
		Strikes:       Strikes{Threshold: 1},
		Ban:           BanPolicy{TTL: filters.Duration(10 * time.Minute)},
		WatchInterval: filters.Duration(5 * time.Second),
	}
	f, err := build(cfg, filters.Env{IPv6Prefix: 64, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	key := func(i int) string { return fmt.Sprintf("2001:db8:7:%x::1", i) } // the i-th /64 of one /48
	strike := func(i int) func(time.Time) {
		return func(now time.Time) { f.Observe(deny(req(key(i), now), "waf", "scan")) }
	}
	operator := func(now time.Time) {
		if _, err := f.BanAt(now, netip.MustParsePrefix("198.51.100.0/24"), time.Hour, "abuse desk"); err != nil {
			t.Fatal(err)
		}
	}
	unban := func(i int) func(time.Time) {
		return func(now time.Time) {
			p, _ := ParseTarget(key(i), 64)
			if _, ok := f.UnbanAt(now, p); !ok {
				t.Fatalf("unban of %s found nothing", p)
			}
		}
	}
	sweep := func(now time.Time) { f.bans.sweep(now) }

	steps := []struct {
		name       string
		at         time.Duration
		do         func(time.Time)
		banned     int // index of the key that must be banned after the step, -1 none
		notBanned  int // index of the key that must not be, -1 none
		held       int // bans in the table
		refused    int // reputation_bans_refused_total
		refusalLog int // "ban refused" lines logged so far
	}{
		{"first ban", 0, strike(0), 0, -1, 1, 0, 0},
		{"second ban", 0, strike(1), 1, -1, 2, 0, 0},
		{"third ban reaches the cap", 0, strike(2), 2, -1, 3, 0, 0},
		{"fourth key refused and logged", 0, strike(3), -1, 3, 3, 1, 1},
		{"refused again within watch_interval: not logged", 4 * time.Second, strike(4), -1, 4, 3, 2, 1},
		{"operator bans are always accepted", 4 * time.Second, operator, -1, -1, 4, 2, 1},
		{"a watch_interval after the last log: logged again", 5 * time.Second, strike(3), -1, 3, 4, 3, 2},
		{"an unban frees a slot", 6 * time.Second, unban(0), -1, 0, 3, 3, 2},
		{"which the next client takes", 6 * time.Second, strike(5), 5, -1, 4, 3, 2},
		{"full again", 7 * time.Second, strike(6), -1, 6, 4, 4, 2},
		// At 11m every strike ban has expired, none is swept: they still
		// count, but a key renews its own expired ban in place.
		{"an expired ban is renewed in its slot", 11 * time.Minute, strike(1), 1, -1, 4, 4, 2},
		{"expired unswept bans still count", 11 * time.Minute, strike(6), -1, 6, 4, 5, 3},
		{"the sweep frees their slots", 11 * time.Minute, sweep, 1, -1, 2, 5, 3},
		{"which new clients take", 11 * time.Minute, strike(6), 6, -1, 3, 5, 3},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		s.do(now)
		if s.banned >= 0 && !f.Check(req(key(s.banned), now)).Deny {
			t.Fatalf("%s: %s not banned", s.name, key(s.banned))
		}
		if s.notBanned >= 0 && f.Check(req(key(s.notBanned), now)).Deny {
			t.Fatalf("%s: %s banned past max_bans", s.name, key(s.notBanned))
		}
		m := collect(f)
		if m["reputation_bans_active"] != float64(s.held) || m["reputation_bans_refused_total"] != float64(s.refused) {
			t.Fatalf("%s: bans_active %v refused %v, want %d and %d", s.name,
				m["reputation_bans_active"], m["reputation_bans_refused_total"], s.held, s.refused)
		}
		if n := strings.Count(logs.String(), "ban refused"); n != s.refusalLog {
			t.Fatalf("%s: %d refusals logged, want %d:\n%s", s.name, n, s.refusalLog, logs.String())
		}
		f.bans.mu.Lock()
		kept, stored := f.bans.strikeBans, strikeBansIn(f.bans)
		f.bans.mu.Unlock()
		if kept != stored {
			t.Fatalf("%s: the store counts %d strike bans, holds %d", s.name, kept, stored)
		}
	}
	if !strings.Contains(logs.String(), "max_bans=3") || !strings.Contains(logs.String(), "target=2001:db8:7:3::/64") {
		t.Errorf("refusal log lacks the cap or the target:\n%s", logs.String())
	}

	// A reload applies a new max_bans to the bans carried over: two strike
	// bans are held, one below the cap of 3, and a cap of 2 is full.
	lowered := cfg
	lowered.MaxBans = 2
	nf, err := build(lowered, filters.Env{IPv6Prefix: 64, Previous: f}, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	defer nf.Close()
	now := t0.Add(11 * time.Minute)
	nf.Observe(deny(req(key(7), now), "waf", "scan"))
	if nf.Check(req(key(7), now)).Deny {
		t.Error("max_bans lowered to 2 on reload, with 2 strike bans held: a third was made")
	}
}

// TestRemoteBansCountAgainstTheCap: bans shared by the fleet are applied
// whatever the cap, and they fill it for this node's strikes, so the fleet
// together holds about max_bans strike bans, not max_bans per node.
func TestRemoteBansCountAgainstTheCap(t *testing.T) {
	s := newBanStore(10, 2)
	for i, src := range []string{"waf", "volumetric", "quota"} {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32)
		s.put(&Ban{Prefix: p, Source: src, Created: t0, Expires: t0.Add(time.Hour)})
	}
	if got := s.held(); got != 3 {
		t.Fatalf("held %d remote bans, want all 3", got)
	}
	p := netip.MustParsePrefix("192.0.2.9/32")
	if b, what := s.escalate(p, t0, time.Minute, time.Hour, time.Hour, "waf", "r", true); what != banRefused || b != nil {
		t.Fatalf("escalate past the cap: %v %v, want refused", b, what)
	}
	if _, ok := s.get(p); ok {
		t.Fatal("a refused ban was stored")
	}
}

// TestMetricsDoNotWalkBans: scraping /metrics costs the same with one ban
// as with thousands (it used to build and sort a list of every ban).
func TestMetricsDoNotWalkBans(t *testing.T) {
	f := newFilter(t, Config{WatchInterval: filters.Duration(time.Hour)}, nil)
	ban := func(i int) {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		if _, err := f.BanAt(t0, p, time.Hour, ""); err != nil {
			t.Fatal(err)
		}
	}
	emit := func(filters.Sample) {}
	ban(0)
	few := testing.AllocsPerRun(100, func() { f.CollectMetrics(emit) })
	for i := 1; i < 5000; i++ {
		ban(i)
	}
	many := testing.AllocsPerRun(100, func() { f.CollectMetrics(emit) })
	if many != few {
		t.Errorf("CollectMetrics: %v allocations with 5000 bans, %v with 1", many, few)
	}
	if m := collect(f); m["reputation_bans_active"] != 5000 {
		t.Errorf("bans_active = %v, want 5000", m["reputation_bans_active"])
	}
}
