package filters

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestLimitOf(t *testing.T) {
	r := Rate{Count: 50, Period: time.Second}
	if got := LimitOf(r, 0); got != (Limit{Rate: r, Burst: 50}) {
		t.Errorf("LimitOf(50/s, 0) = %+v, want the rate's count as burst", got)
	}
	if got := LimitOf(r, 3); got != (Limit{Rate: r, Burst: 3}) {
		t.Errorf("LimitOf(50/s, 3) = %+v", got)
	}
}

func TestLimitGCRATicks(t *testing.T) {
	tests := []struct {
		rate Rate
		tick time.Duration
		want int64
	}{
		{Rate{10, time.Second}, time.Nanosecond, int64(100 * time.Millisecond)},
		{Rate{10, time.Second}, time.Microsecond, 100_000},
		{Rate{3, time.Second}, time.Microsecond, 333_333},   // rounded down
		{Rate{2_000_000, time.Second}, time.Microsecond, 1}, // faster than a tick: one per tick
		{Rate{1, time.Nanosecond}, time.Microsecond, 1},     // the same
		{Rate{600, time.Minute}, time.Microsecond, 100_000}, // 100ms
		{Rate{1, 24 * time.Hour}, time.Microsecond, int64(24 * time.Hour / time.Microsecond)},
	}
	for _, tc := range tests {
		g := Limit{Rate: tc.rate, Burst: 4}.GCRA(tc.tick)
		if g.Interval != tc.want || g.Burst != 4 {
			t.Errorf("%s in ticks of %v: %+v, want interval %d, burst 4", tc.rate, tc.tick, g, tc.want)
		}
	}
}

// TestGCRATake walks one key through fixed instants: interval 100, burst 3.
func TestGCRATake(t *testing.T) {
	g := GCRA{Interval: 100, Burst: 3}
	tests := []struct {
		name      string
		tat, now  int64
		cost      int64
		next, wit int64
	}{
		{"fresh key: the first of the burst", 0, 1000, 1, 1100, 0},
		{"second at the same instant", 1100, 1000, 1, 1200, 0},
		{"third: the burst is spent", 1200, 1000, 1, 1300, 0},
		{"fourth is refused one interval short", 1300, 1000, 1, 1300, 100},
		{"refused again 50 later: 50 to go", 1300, 1050, 1, 1300, 50},
		{"conforms one interval later", 1300, 1100, 1, 1400, 0},
		{"cost 3 from a drained key", 0, 5000, 3, 5300, 0},
		{"cost 4 above the burst: refused, its wait exact but moot", 0, 5000, 4, 5000, 100},
		{"cost 2 when one is left", 5200, 5000, 2, 5200, 100},
		{"a TAT in the past is a drained key", 4000, 5000, 1, 5100, 0},
		{"burst 3 spent in one cost-3 request, then refused", 5300, 5000, 1, 5300, 100},
	}
	for _, tc := range tests {
		next, wait := g.Take(tc.tat, tc.now, tc.cost)
		if next != tc.next || wait != tc.wit {
			t.Errorf("%s: Take(%d, %d, %d) = %d, %d; want %d, %d", tc.name, tc.tat, tc.now, tc.cost, next, wait, tc.next, tc.wit)
		}
	}
}

func TestGCRARemaining(t *testing.T) {
	g := GCRA{Interval: 100, Burst: 3}
	tests := []struct {
		tat, now, want int64
	}{
		{0, 1000, 3},    // drained: the whole burst
		{1100, 1000, 2}, // one spent
		{1300, 1000, 0}, // all spent
		{1250, 1000, 0}, // 2.5 spent: less than one left
		{1150, 1000, 1},
		{1900, 1000, 0}, // owes more than the burst (lowered on a reload)
	}
	for _, tc := range tests {
		if got := g.Remaining(tc.tat, tc.now); got != tc.want {
			t.Errorf("Remaining(%d, %d) = %d, want %d", tc.tat, tc.now, got, tc.want)
		}
	}
	if g.Span() != 300 {
		t.Errorf("Span = %d, want 300", g.Span())
	}
}

// TestGCRAIsATokenBucket checks Take against a different formulation of the
// same limit: a bucket of Burst×Interval credit that refills one tick per
// tick and pays Interval per unit of cost. Over random costs and
// non-decreasing instants both must agree on every decision and wait.
func TestGCRAIsATokenBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for range 200 {
		g := GCRA{Interval: 1 + rng.Int64N(1000), Burst: 1 + rng.Int64N(20)}
		credit, last := g.Span(), int64(0)
		var tat, now int64
		for i := range 500 {
			now += rng.Int64N(3 * g.Interval)
			cost := 1 + rng.Int64N(g.Burst+1)
			credit = min(g.Span(), credit+now-last)
			last = now
			wantWait := max(0, cost*g.Interval-credit)
			if wantWait == 0 {
				credit -= cost * g.Interval
			}
			next, wait := g.Take(tat, now, cost)
			if wait != wantWait {
				t.Fatalf("%+v step %d at %d cost %d: wait %d, the token bucket says %d", g, i, now, cost, wait, wantWait)
			}
			tat = next
		}
	}
}
