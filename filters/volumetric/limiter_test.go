package volumetric

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// t0 is the fixed instant the tables walk from.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func keyN(i uint32) filters.Key {
	var k filters.Key
	k[10], k[11] = 0xff, 0xff
	k[12], k[13], k[14], k[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return k
}

func mustLimiter(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l, err := NewLimiter(cfg)
	if err != nil {
		t.Fatalf("NewLimiter(%+v): %v", cfg, err)
	}
	return l
}

func mustRate(t testing.TB, s string) filters.Rate {
	t.Helper()
	r, err := filters.ParseRate(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSteadyRateAtTheLimitIsAlwaysAllowed(t *testing.T) {
	for _, tc := range []struct {
		rate  string
		burst int
	}{
		{"50/s", 0}, {"50/s", 1}, {"50/s", 100}, {"3000/m", 0}, {"3000/m", 7}, {"10/5s", 1}, {"10/5s", 0}, {"1000000/s", 1}, {"1000000/s", 0}, {"7/s", 0},
	} {
		t.Run(fmt.Sprintf("%s/burst=%d", tc.rate, tc.burst), func(t *testing.T) {
			r := mustRate(t, tc.rate)
			l := mustLimiter(t, Config{Rate: r, Burst: tc.burst})
			iv := r.Interval()
			k := keyN(1)
			for i := range 10_000 {
				if ok, wait := l.AllowAt(t0.Add(time.Duration(i)*iv), k); !ok {
					t.Fatalf("request %d at exactly the rate refused (retry after %v)", i, wait)
				}
			}
			// One nanosecond too early, with the burst spent, must be refused:
			// the pacing above was exactly at the limit, not below it.
			now := t0.Add(10_000 * iv)
			burst := tc.burst
			if burst == 0 {
				burst = int(r.Count) // the default
			}
			for i := range burst {
				if ok, _ := l.AllowAt(now, k); !ok {
					t.Fatalf("burst request %d refused", i)
				}
			}
			if ok, _ := l.AllowAt(now.Add(iv-1), k); ok {
				t.Fatalf("request one nanosecond ahead of the rate allowed")
			}
		})
	}
}

// TestBackToBackAllowsBurst: burst+1 back-to-back requests from an idle
// client give exactly burst allowed, then one denied that waits exactly one
// interval. Burst 0 is the rate's count.
func TestBackToBackAllowsBurst(t *testing.T) {
	for _, tc := range []struct {
		rate        string
		burst, want int
	}{
		{"10/s", 1, 1}, {"10/s", 2, 2}, {"10/s", 5, 5}, {"10/s", 100, 100}, {"10/s", 1000, 1000},
		{"10/s", 0, 10}, {"50/s", 0, 50}, {"1/m", 0, 1}, {"10/5s", 0, 10},
	} {
		t.Run(fmt.Sprintf("%s/burst=%d", tc.rate, tc.burst), func(t *testing.T) {
			r := mustRate(t, tc.rate)
			l := mustLimiter(t, Config{Rate: r, Burst: tc.burst})
			for i := range tc.want {
				if ok, wait := l.AllowAt(t0, keyN(7)); !ok {
					t.Fatalf("back-to-back request %d of a burst of %d refused (wait %v)", i+1, tc.want, wait)
				}
			}
			ok, wait := l.AllowAt(t0, keyN(7))
			if ok {
				t.Fatalf("request %d back to back allowed, want only %d", tc.want+1, tc.want)
			}
			if wait != r.Interval() {
				t.Fatalf("refused request waits %v, want one interval %v", wait, r.Interval())
			}
		})
	}
}

func TestIdleBucketRefillsExactly(t *testing.T) {
	const burst = 5
	r := mustRate(t, "10/s") // 100ms
	iv := r.Interval()
	for idle := 0; idle <= burst+3; idle++ {
		l := mustLimiter(t, Config{Rate: r, Burst: burst})
		k := keyN(1)
		for range burst {
			if ok, _ := l.AllowAt(t0, k); !ok {
				t.Fatal("initial burst refused")
			}
		}
		now := t0.Add(time.Duration(idle) * iv)
		got := 0
		for {
			ok, _ := l.AllowAt(now, k)
			if !ok {
				break
			}
			got++
		}
		want := min(idle, burst)
		if got != want {
			t.Errorf("after %d intervals idle: %d requests allowed at once, want %d", idle, got, want)
		}
	}
	// A partial interval gives nothing back.
	l := mustLimiter(t, Config{Rate: r, Burst: burst})
	for range burst {
		l.AllowAt(t0, keyN(1))
	}
	if ok, wait := l.AllowAt(t0.Add(iv-time.Nanosecond), keyN(1)); ok || wait != time.Nanosecond {
		t.Errorf("1ns before the refill: ok=%v wait=%v, want refused, 1ns", ok, wait)
	}
}

// step is one request of a table over fixed instants: its offset from t0,
// how many requests it makes at once, and the expected decision and exact
// wait of a refusal.
type step struct {
	at   time.Duration
	n    int
	ok   bool
	wait time.Duration
}

// TestRetryAfterIsExact walks tables of fixed instants in the style of
// x/time/rate's tests.
func TestRetryAfterIsExact(t *testing.T) {
	ms := time.Millisecond
	// At 4/s (250ms) the default burst is 4, so burst 0 and 4 must agree.
	burst4 := []step{
		{0, 4, true, 0},         // the whole burst at once
		{0, 1, false, 250 * ms}, // next slot in one interval
		{0, 2, false, 500 * ms}, // two slots need two
		{100 * ms, 1, false, 150 * ms},
		{250 * ms, 1, true, 0},
		{250 * ms, 1, false, 250 * ms},
		{2 * time.Second, 5, false, Never}, // more than burst never fits
		{2 * time.Second, 4, true, 0},      // idle long enough: full again
	}
	for _, tc := range []struct {
		name  string
		rate  string
		burst int
		steps []step
	}{
		{name: "strict pacing", rate: "10/s", burst: 1, steps: []step{
			{0, 1, true, 0},
			{0, 1, false, 100 * ms},
			{0, 2, false, Never},
			{30 * ms, 1, false, 70 * ms},
			{100 * ms, 1, true, 0},
			{199 * ms, 1, false, 1 * ms},
			{250 * ms, 1, true, 0},
			{300 * ms, 1, false, 50 * ms},
		}},
		{name: "burst 4", rate: "4/s", burst: 4, steps: burst4},
		{name: "default burst", rate: "4/s", burst: 0, steps: burst4},
		{name: "burst 3", rate: "4/s", burst: 3, steps: []step{
			{0, 4, false, Never},
			{0, 3, true, 0},         // the whole burst at once
			{0, 1, false, 250 * ms}, // TAT 750ms, τ 500ms
			{0, 2, false, 500 * ms},
			{249 * ms, 1, false, 1 * ms},
			{250 * ms, 2, false, 250 * ms},
			{250 * ms, 1, true, 0},
			{750 * ms, 2, true, 0},            // TAT 1s → 1.5s
			{750 * ms, 1, false, 250 * ms},    // 1.5s − τ − 750ms
			{time.Second, 3, false, 500 * ms}, // 1.5s + 2×250ms − τ − 1s
			{1500 * ms, 3, true, 0},           // drained exactly: full again
		}},
		{name: "per minute", rate: "3000/m", burst: 2, steps: []step{
			{0, 1, true, 0},
			{0, 1, true, 0},
			{0, 1, false, 20 * ms},
			{5 * ms, 1, false, 15 * ms},
			{20 * ms, 1, true, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustLimiter(t, Config{Rate: mustRate(t, tc.rate), Burst: tc.burst})
			for i, s := range tc.steps {
				ok, wait := l.AllowNAt(t0.Add(s.at), keyN(3), s.n)
				if ok != s.ok || wait != s.wait {
					t.Fatalf("step %d (at +%v, n=%d): got ok=%v wait=%v, want ok=%v wait=%v", i, s.at, s.n, ok, wait, s.ok, s.wait)
				}
			}
		})
	}
}

func TestTimeGoingBackwardsNeverGrantsExtra(t *testing.T) {
	r := mustRate(t, "10/s")
	iv := r.Interval()
	const burst = 3
	for _, back := range []time.Time{
		t0.Add(-time.Nanosecond),
		t0.Add(-iv),
		t0.Add(-time.Hour),
		t0.AddDate(-300, 0, 0), // outside the exact range of Unix nanoseconds
		{},                     // the zero time
		time.Unix(math.MinInt64/2, 0),
	} {
		t.Run(back.String(), func(t *testing.T) {
			l := mustLimiter(t, Config{Rate: r, Burst: burst})
			k := keyN(9)
			for range burst {
				if ok, _ := l.AllowAt(t0, k); !ok {
					t.Fatal("burst refused")
				}
			}
			for i := range 100 {
				if ok, wait := l.AllowAt(back, k); ok || wait <= 0 {
					t.Fatalf("request %d at %v after a full bucket at %v: ok=%v wait=%v", i, back, t0, ok, wait)
				}
			}
			// Forward again: exactly as if the backward requests never happened.
			if ok, _ := l.AllowAt(t0.Add(iv), k); !ok {
				t.Fatal("the refill one interval later was lost")
			}
			if ok, _ := l.AllowAt(t0.Add(iv), k); ok {
				t.Fatal("backward requests granted extra headroom")
			}
		})
	}
}

func TestAbsurdTimesDoNotPanicOrOverflow(t *testing.T) {
	l := mustLimiter(t, Config{Rate: mustRate(t, "1/d"), Burst: 1000, MaxClients: 4})
	times := []time.Time{{}, time.Unix(math.MaxInt64/2, 0), time.Unix(math.MinInt64/2, 0), t0, time.Unix(0, math.MaxInt64), time.Unix(1<<40, 0)}
	for _, a := range times {
		for _, b := range times {
			for i := range 3 {
				ok, wait := l.AllowAt(a, keyN(uint32(i)))
				if !ok && wait <= 0 {
					t.Fatalf("refusal at %v with non-positive wait %v", a, wait)
				}
				l.AllowNAt(b, keyN(uint32(i)), 1001)
				l.AllowNAt(b, keyN(uint32(i)), math.MaxInt)
			}
		}
	}
	// Far future times collapse to one instant: still at most burst at once.
	l = mustLimiter(t, Config{Rate: mustRate(t, "1/s"), Burst: 2})
	allowed := 0
	for i := range 10 {
		if ok, _ := l.AllowAt(time.Unix(1<<40+int64(i), 0), keyN(1)); ok {
			allowed++
		}
	}
	if allowed != 2 {
		t.Fatalf("clamped far-future instants allowed %d, want 2", allowed)
	}
}

func TestAllowNAt(t *testing.T) {
	l := mustLimiter(t, Config{Rate: mustRate(t, "10/s"), Burst: 4})
	k := keyN(1)
	if ok, _ := l.AllowNAt(t0, k, 0); !ok {
		t.Fatal("n=0 refused")
	}
	if ok, wait := l.AllowNAt(t0, k, 5); ok || wait != Never {
		t.Fatalf("n=5 > burst: ok=%v wait=%v, want refused, Never", ok, wait)
	}
	if l.Len() != 0 {
		t.Fatalf("refused and empty requests created %d buckets", l.Len())
	}
	if ok, _ := l.AllowNAt(t0, k, 4); !ok {
		t.Fatal("n=burst from idle refused")
	}
	if ok, wait := l.AllowNAt(t0, k, 1); ok || wait != 100*time.Millisecond {
		t.Fatalf("after n=burst: ok=%v wait=%v", ok, wait)
	}
	if got := l.Stats().Denied; got != 2 {
		t.Fatalf("Denied = %d, want 2", got)
	}
	// The default burst is the rate's count: 10 at once at 10/s, 11 never.
	l = mustLimiter(t, Config{Rate: mustRate(t, "10/s")})
	if ok, wait := l.AllowNAt(t0, k, 11); ok || wait != Never {
		t.Fatalf("default burst, n=11: ok=%v wait=%v, want refused, Never", ok, wait)
	}
	if ok, _ := l.AllowNAt(t0, k, 10); !ok {
		t.Fatal("default burst, n=10 from idle refused")
	}
}

func TestKeysAreIndependent(t *testing.T) {
	l := mustLimiter(t, Config{Rate: mustRate(t, "1/s"), Burst: 0})
	for i := range uint32(1000) {
		if ok, _ := l.AllowAt(t0, keyN(i)); !ok {
			t.Fatalf("key %d refused on its first request", i)
		}
	}
	for i := range uint32(1000) {
		if ok, _ := l.AllowAt(t0, keyN(i)); ok {
			t.Fatalf("key %d allowed twice in one instant", i)
		}
	}
}
