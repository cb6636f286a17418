package gcratest

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

var t0 = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

// run decides arrivals (offsets from t0) with filters.GCRA of lim in
// microseconds, each in a window of width w around its instant.
func run(lim filters.Limit, arrivals []time.Duration, w time.Duration) []Decision {
	g := lim.GCRA(time.Microsecond)
	var tat int64
	ds := make([]Decision, len(arrivals))
	for i, at := range arrivals {
		now := at.Microseconds()
		next, wait := g.Take(tat, now, 1)
		if wait == 0 {
			tat = next
		}
		ds[i] = Decision{Start: t0.Add(at - w/2), End: t0.Add(at + w/2), Allowed: wait == 0}
	}
	return ds
}

// arrivals are n requests at about five times the rate of a 10ms interval,
// with jitter, sorted and at least gap apart.
func arrivals(seed uint64, n int, gap time.Duration) []time.Duration {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]time.Duration, n)
	at := time.Duration(0)
	for i := range out {
		at += gap + time.Duration(r.Int64N(int64(2*time.Millisecond)))
		out[i] = at
	}
	return out
}

func TestCheck(t *testing.T) {
	lim := filters.Limit{Rate: filters.Rate{Count: 100, Period: time.Second}, Burst: 10}
	const w = 500 * time.Microsecond
	for seed := range uint64(20) {
		arr := arrivals(seed, 600, w)
		if err := Check(lim, time.Microsecond, run(lim, arr, w)); err != nil {
			t.Fatalf("seed %d: the real GCRA's run refused: %v", seed, err)
		}
		// A limiter with a burst of 11 admits one request too many.
		loose := lim
		loose.Burst++
		if err := Check(lim, time.Microsecond, run(loose, arr, w)); !errors.Is(err, ErrRun) {
			t.Fatalf("seed %d: burst 11 against 10 passed (%v)", seed, err)
		}
		// One of 9 refuses a request it had to admit.
		tight := lim
		tight.Burst--
		if err := Check(lim, time.Microsecond, run(tight, arr, w)); !errors.Is(err, ErrRun) {
			t.Fatalf("seed %d: burst 9 against 10 passed (%v)", seed, err)
		}
		// A rate 2% high admits too many over the run.
		fast := lim
		fast.Rate.Count = 102
		if err := Check(lim, time.Microsecond, run(fast, arr, w)); !errors.Is(err, ErrRun) {
			t.Fatalf("seed %d: rate 102/s against 100/s passed (%v)", seed, err)
		}
	}
}

func TestCheckFlippedDecision(t *testing.T) {
	lim := filters.Limit{Rate: filters.Rate{Count: 100, Period: time.Second}, Burst: 10}
	ds := run(lim, arrivals(7, 300, 0), 0)
	for i := range ds {
		flipped := append([]Decision(nil), ds...)
		flipped[i].Allowed = !flipped[i].Allowed
		if err := Check(lim, time.Microsecond, flipped); !errors.Is(err, ErrRun) {
			t.Fatalf("decision %d flipped (to allowed=%v) passed", i, flipped[i].Allowed)
		}
	}
}

func TestCheckRefusesOverlappingWindows(t *testing.T) {
	lim := filters.Limit{Rate: filters.Rate{Count: 1, Period: time.Second}, Burst: 1}
	ds := []Decision{{Start: t0, End: t0.Add(time.Second), Allowed: true}, {Start: t0.Add(time.Millisecond), End: t0.Add(2 * time.Second)}}
	if err := Check(lim, time.Microsecond, ds); !errors.Is(err, ErrRun) {
		t.Fatalf("overlapping windows accepted: %v", err)
	}
}
