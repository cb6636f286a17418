// Package gcratest checks, from the outside, that a run of decisions on one
// key is one a GCRA limiter (filters.GCRA) can make. Tests of the
// fleet-wide limiters need it: the store decides on its own clock (Redis's
// TIME), so a test never knows the instant a decision was made, only that
// it fell between the call's start and its end. Check takes every instant
// in those windows as possible, so it never fails a correct limiter however
// loaded the machine, and still fails one that admits a single request more
// than the limit allows, or refuses one it had to admit.
//
// The two facts it checks, for requests of cost 1 on a key never seen
// before the run, with emission interval T and burst B:
//
//   - any n requests admitted from instant a to instant b satisfy
//     n ≤ B + (b−a)/T (the limit's definition);
//   - a refusal at t means that, since some admitted request at r that
//     found the key drained, k requests were admitted with
//     (k−B+1)·T > t−r (the key was still that far in debt).
package gcratest

import (
	"errors"
	"fmt"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// Decision is one request of cost 1, decided by the store at some instant
// between Start and End on the store's clock. A redis-server on this
// machine reads TIME from the same wall clock as time.Now.
type Decision struct {
	Start, End time.Time
	Allowed    bool
}

// ErrRun is wrapped by every error Check returns.
var ErrRun = errors.New("gcratest: not a run GCRA can make")

// Check reports the first decision of ds that no GCRA of limit, counted in
// whole ticks of tick (time.Microsecond for the Redis script), could have
// made on a key never seen before ds[0]. ds must be in the order the store
// decided them, with windows that do not overlap: a caller that sends one
// request at a time.
func Check(limit filters.Limit, tick time.Duration, ds []Decision) error {
	g := limit.GCRA(tick)
	if g.Burst < 1 {
		return fmt.Errorf("%w: burst %d below 1", ErrRun, g.Burst)
	}
	for i := range ds {
		if ds[i].End.Before(ds[i].Start) || i > 0 && ds[i].Start.Before(ds[i-1].End) {
			return fmt.Errorf("%w: decision %d's window [%v, %v] is not after the one before", ErrRun, i, ds[i].Start, ds[i].End)
		}
	}
	// ticks bounds a span in whole ticks: up rounds so that the true span
	// is never more, down so that it is never less (either side's instant
	// may sit anywhere in its tick).
	up := func(d time.Duration) int64 { return int64((d+tick-1)/tick) + 1 }
	down := func(d time.Duration) int64 { return max(0, int64(d/tick)-1) }
	var admitted []int // indexes of the admitted decisions so far
	for i, d := range ds {
		if d.Allowed {
			admitted = append(admitted, i)
			// The n admitted from admitted[p] to i took at least the
			// span between the earliest and latest instants possible.
			for p, first := range admitted {
				n := int64(len(admitted) - p)
				span := up(d.End.Sub(ds[first].Start))
				if most := g.Burst + span/g.Interval; n > most {
					return fmt.Errorf("%w: decisions %d to %d admitted %d requests within %v; GCRA(interval %v, burst %d) admits at most %d",
						ErrRun, first, i, n, time.Duration(span)*tick, time.Duration(g.Interval)*tick, g.Burst, most)
				}
			}
			continue
		}
		// A refusal needs a debt: some admitted request r before it, with
		// the k admitted from r on, still owing more than (B−1)·T at the
		// latest instant r could have been and the earliest d could.
		justified := false
		for p, r := range admitted {
			k := int64(len(admitted) - p)
			if (k-g.Burst+1)*g.Interval > down(d.Start.Sub(ds[r].End)) {
				justified = true
				break
			}
		}
		if !justified {
			return fmt.Errorf("%w: decision %d refused, but %d admitted before it are within what GCRA(interval %v, burst %d) allows at any instant of the windows",
				ErrRun, i, len(admitted), time.Duration(g.Interval)*tick, g.Burst)
		}
	}
	return nil
}
