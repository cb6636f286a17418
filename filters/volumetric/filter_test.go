package volumetric

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

func mustNew(t *testing.T, cfg Config, prev filters.Filter) *Filter {
	t.Helper()
	f, err := New(cfg, filters.Env{Previous: prev})
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return f
}

func request(client string, now time.Time) *filters.Request {
	addr := netip.MustParseAddr(client)
	return &filters.Request{Client: addr, Key: filters.KeyOf(addr, 64), Now: now}
}

func TestCheckDeniesWith429AndExactRetryAfter(t *testing.T) {
	f := mustNew(t, Config{Rate: mustRate(t, "2/s"), Burst: 2}, nil)
	if f.Name() != "volumetric" {
		t.Fatalf("Name = %q", f.Name())
	}
	for i := range 2 {
		if v := f.Check(request("192.0.2.1", t0)); v.Deny {
			t.Fatalf("request %d denied: %+v", i, v)
		}
	}
	v := f.Check(request("192.0.2.1", t0.Add(100*time.Millisecond)))
	want := filters.Verdict{Deny: true, Status: http.StatusTooManyRequests, Reason: "rate", RetryAfter: 400 * time.Millisecond}
	if v.Deny != want.Deny || v.Status != want.Status || v.Reason != want.Reason || v.RetryAfter != want.RetryAfter || v.Shadow {
		t.Fatalf("verdict %+v, want %+v", v, want)
	}
	// The quota stage's RateLimit fields: burst 2 refills in 1s, and the
	// refused request could pass in 400ms (t rounds up).
	if p, s := v.Headers.Get("RateLimit-Policy"), v.Headers.Get("RateLimit"); p != `"volumetric";q=2;w=1` || s != `"volumetric";r=0;t=1` {
		t.Fatalf("RateLimit-Policy %q, RateLimit %q; want the quota stage's format", p, s)
	}
	// Another client, and an IPv6 client in the same /64 as a third, are metered apart and together.
	if v := f.Check(request("192.0.2.2", t0)); v.Deny {
		t.Fatal("another client denied")
	}
	f.Check(request("2001:db8::1", t0))
	f.Check(request("2001:db8::2", t0))
	if v := f.Check(request("2001:db8::3", t0)); !v.Deny {
		t.Fatal("third request from one IPv6 /64 allowed: the prefix key is not shared")
	}
}

func TestChainReportsEveryDenyAndShadowAllows(t *testing.T) {
	for _, mode := range []filters.Mode{filters.ModeBlock, filters.ModeShadow} {
		t.Run(string(mode), func(t *testing.T) {
			f := mustNew(t, Config{Mode: mode, Rate: mustRate(t, "1/s")}, nil)
			var events []filters.Event
			chain := filters.NewChain([]filters.Stage{{Filter: f, Mode: mode}},
				[]filters.Observer{filters.ObserverFunc(func(e filters.Event) { events = append(events, e) })}, nil)
			denied := 0
			for range 5 {
				if v := chain.Run(request("198.51.100.7", t0)); v.Deny {
					denied++
					if v.Stage != "volumetric" || v.StatusCode() != 429 || v.RetryAfter != time.Second {
						t.Fatalf("deny verdict %+v", v)
					}
				} else if len(v.Headers) != 0 {
					// A shadow deny lets the request through: telling the
					// client nothing remains would be false.
					t.Fatalf("allowed request carries headers %v", v.Headers)
				}
			}
			wantDenied := 4
			if mode == filters.ModeShadow {
				wantDenied = 0
			}
			if denied != wantDenied {
				t.Fatalf("%d of 5 denied, want %d", denied, wantDenied)
			}
			if len(events) != 4 {
				t.Fatalf("observers saw %d denies, want 4 (each one is a strike)", len(events))
			}
			for _, e := range events {
				if e.Verdict.Reason != "rate" || e.Verdict.Shadow != (mode == filters.ModeShadow) {
					t.Fatalf("event verdict %+v", e.Verdict)
				}
			}
			if got := f.Limiter().Stats().Denied; got != 4 {
				t.Fatalf("denies counted %d, want 4 in both modes", got)
			}
		})
	}
}

func collect(f *Filter) map[string]filters.Sample {
	out := map[string]filters.Sample{}
	f.CollectMetrics(func(s filters.Sample) {
		out[s.Name+"{"+strings.Join(s.Labels, "=")+"}"] = s
	})
	return out
}

func TestMetrics(t *testing.T) {
	f := mustNew(t, Config{Rate: mustRate(t, "1/s"), MaxClients: 2, Shards: 1}, nil)
	f.Check(request("192.0.2.1", t0))
	f.Check(request("192.0.2.1", t0))                    // denied
	f.Check(request("192.0.2.2", t0))                    // fills the cache
	f.Check(request("192.0.2.3", t0))                    // forced: nothing drained
	f.Check(request("192.0.2.4", t0.Add(2*time.Second))) // drained
	got := collect(f)
	for name, want := range map[string]struct {
		kind  filters.MetricKind
		value float64
	}{
		"volumetric_clients{}":                     {filters.Gauge, 2},
		"volumetric_max_clients{}":                 {filters.Gauge, 2},
		"volumetric_evictions_total{kind=drained}": {filters.Counter, 1},
		"volumetric_evictions_total{kind=forced}":  {filters.Counter, 1},
		"volumetric_denies_total{}":                {filters.Counter, 1},
	} {
		s, ok := got[name]
		if !ok {
			t.Errorf("metric %s missing (have %v)", name, got)
			continue
		}
		if s.Kind != want.kind || s.Value != want.value || s.Help == "" {
			t.Errorf("metric %s = %+v, want kind %v value %v and help", name, s, want.kind, want.value)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d samples, want 5", len(got))
	}
	for name := range got {
		if strings.Contains(name, "192.0.2") {
			t.Errorf("a client address leaked into metric %s", name)
		}
	}
}

// spend sends requests from client at t0 until one is refused.
func spend(f *Filter, client string) {
	for !f.Check(request(client, t0)).Deny {
	}
}

func TestReloadCarriesBuckets(t *testing.T) {
	base := Config{Rate: mustRate(t, "1/s"), Burst: 3, MaxClients: 100, Shards: 4}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		kept   bool
		shared bool
	}{
		{"unchanged", func(*Config) {}, true, true},
		{"mode only", func(c *Config) { c.Mode = filters.ModeShadow }, true, true},
		{"bigger cache", func(c *Config) { c.MaxClients = 1000 }, true, false},
		{"more shards", func(c *Config) { c.Shards = 16 }, true, false},
		{"other rate", func(c *Config) { c.Rate = mustRate(t, "2/s") }, false, false},
		{"other burst", func(c *Config) { c.Burst = 4 }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := mustNew(t, base, nil)
			spend(old, "192.0.2.1")
			spend(old, "192.0.2.2")
			cfg := base
			tc.change(&cfg)
			f := mustNew(t, cfg, old)
			if shared := f.lim == old.lim; shared != tc.shared {
				t.Fatalf("limiter shared=%v, want %v", shared, tc.shared)
			}
			v := f.Check(request("192.0.2.1", t0.Add(time.Millisecond)))
			if v.Deny != tc.kept {
				t.Fatalf("spent client denied=%v after reload, want %v", v.Deny, tc.kept)
			}
			// Counters never go backwards across a reload.
			if got := collect(f)["volumetric_denies_total{}"].Value; got < 2 {
				t.Fatalf("denies after reload = %v, want at least the 2 before it", got)
			}
			// The old instance is dropped by its owner; the new one must
			// not depend on it beyond the shared limiter.
			if tc.kept && !tc.shared && f.lim.Len() != 2 {
				t.Fatalf("copied %d buckets, want 2", f.lim.Len())
			}
		})
	}
}

// TestReloadComparesResolvedBurst: a reload decides "rate or burst
// changed" on the resolved burst, so burst 0 and the rate's count are the
// same burst, and burst 0 under another count is another burst.
func TestReloadComparesResolvedBurst(t *testing.T) {
	five := Config{Rate: mustRate(t, "5/s"), MaxClients: 100, Shards: 4} // burst 0: 5
	for _, tc := range []struct {
		name           string
		from, to       Config
		kept, shared   bool
		wantBurst      int
		wantAfterSpend int // requests the spent client gets at once after the reload, at t0
	}{
		{"0 to the rate's count", five, with(five, func(c *Config) { c.Burst = 5 }), true, true, 5, 0},
		{"the rate's count to 0", with(five, func(c *Config) { c.Burst = 5 }), five, true, true, 5, 0},
		{"0 to the count, resized", five, with(five, func(c *Config) { c.Burst, c.Shards = 5, 8 }), true, false, 5, 0},
		// 10/2s has 5/s's interval but its count, the default burst, is 10.
		{"0 under another count", five, with(five, func(c *Config) { c.Rate = mustRate(t, "10/2s") }), false, false, 10, 10},
		// Same interval and resolved burst, other rate text: buckets copied.
		{"same interval and resolved burst", five, with(five, func(c *Config) { c.Rate, c.Burst = mustRate(t, "10/2s"), 5 }), true, false, 5, 0},
		{"0 to 1", five, with(five, func(c *Config) { c.Burst = 1 }), false, false, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := mustNew(t, tc.from, nil)
			spend(old, "192.0.2.1")
			f := mustNew(t, tc.to, old)
			if shared := f.lim == old.lim; shared != tc.shared {
				t.Fatalf("limiter shared=%v, want %v", shared, tc.shared)
			}
			if f.cfg.Burst != tc.wantBurst || f.lim.gcra.Burst != int64(tc.wantBurst) {
				t.Fatalf("resolved burst %d (limiter %d), want %d", f.cfg.Burst, f.lim.gcra.Burst, tc.wantBurst)
			}
			if tc.kept && f.lim.Len() != 1 {
				t.Fatalf("kept %d buckets, want 1", f.lim.Len())
			}
			got := 0
			for !f.Check(request("192.0.2.1", t0)).Deny {
				got++
			}
			if got != tc.wantAfterSpend {
				t.Fatalf("spent client got %d through after the reload, want %d", got, tc.wantAfterSpend)
			}
		})
	}
}

func with(c Config, change func(*Config)) Config {
	change(&c)
	return c
}

func TestReloadIntoSmallerCacheKeepsTheMostRecent(t *testing.T) {
	old := mustNew(t, Config{Rate: mustRate(t, "1/s"), MaxClients: 100, Shards: 1}, nil)
	for i := range 50 {
		old.Check(request(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String(), t0))
	}
	f := mustNew(t, Config{Rate: mustRate(t, "1/s"), MaxClients: 10, Shards: 1}, old)
	if n := f.lim.Len(); n != 10 {
		t.Fatalf("holds %d, want 10", n)
	}
	for i := 40; i < 50; i++ {
		if !f.lim.holds(filters.KeyOf(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 64)) {
			t.Fatalf("recent client %d dropped", i)
		}
	}
}

// TestReloadIntoSmallerCacheKeepsIndebted: a reload into a smaller cache
// copies only the buckets still in debt at the latest arrival the old
// limiter decided. A drained bucket is the same as none, so the drained
// clients, though more recent, must not push out the clients in debt:
// every one of those survives, up to the new cap, whatever old shard it
// sat in.
func TestReloadIntoSmallerCacheKeepsIndebted(t *testing.T) {
	addr := func(i int) string { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String() }
	key := func(i int) filters.Key { return filters.KeyOf(netip.MustParseAddr(addr(i)), 64) }
	const latest = 200 // the client whose request is the old limiter's latest
	for _, tc := range []struct {
		name                string
		oldShards, indebted int // indebted: clients spent at t0, besides latest
		held                int
	}{
		{"one old shard", 1, 8, 9},
		{"eight old shards", 8, 8, 9},
		{"more in debt than the new cap", 1, 12, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Rate: mustRate(t, "1/s"), Burst: 100, MaxClients: 1000, Shards: tc.oldShards}
			old := mustNew(t, cfg, nil)
			// The clients in debt are the least recently used: each spends its
			// burst at t0 and owes 100s.
			for i := range tc.indebted {
				spend(old, addr(i))
			}
			// 40 clients send one request each at t0+1s: drained by t0+2s.
			for i := 100; i < 140; i++ {
				if v := old.Check(request(addr(i), t0.Add(time.Second))); v.Deny {
					t.Fatalf("client %d denied", i)
				}
			}
			// The latest arrival, at t0+50s (in debt until t0+51s).
			old.Check(request(addr(latest), t0.Add(50*time.Second)))

			f := mustNew(t, with(cfg, func(c *Config) { c.MaxClients, c.Shards = 10, 1 }), old)
			if n := f.lim.Len(); n != tc.held {
				t.Fatalf("holds %d buckets, want %d", n, tc.held)
			}
			for i := 100; i < 140; i++ {
				if f.lim.holds(key(i)) {
					t.Errorf("drained client %d copied", i)
				}
			}
			if tc.indebted+1 > tc.held {
				return // more than fit: which stay is absorb's order, not pinned here
			}
			inDebt := []int{latest}
			for i := range tc.indebted {
				inDebt = append(inDebt, i)
			}
			for _, i := range inDebt {
				if !f.lim.holds(key(i)) {
					t.Errorf("client %d, in debt, dropped", i)
				}
			}
			// A kept client's debt came along: at t0+50s it owes 50s, so 50
			// of its burst of 100 are left (a forgotten one would get 100).
			got := 0
			for !f.Check(request(addr(0), t0.Add(50*time.Second))).Deny {
				got++
			}
			if got != 50 {
				t.Errorf("client 0 got %d requests through at t0+50s after the reload, want 50", got)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	_, err := New(Config{Burst: -1}, filters.Env{})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	var fe *filters.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a FieldError inside", err)
	}
	if _, err := NewLimiter(Config{Mode: filters.ModeOff}); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewLimiter without a rate: err = %v", err)
	}
}
