package quota

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// Both stores do their arithmetic in whole microseconds (filters.GCRA in
// ticks of usTick): Redis's TIME has microsecond resolution and Lua numbers
// are doubles, exact below 2^53, so every value the script handles stays an
// exact integer and the memory store can reproduce it bit for bit. Rates
// above a million per second per key are served as a million. maxSpan keeps
// Burst×Interval (and the cost of a request) far below that bound.
const (
	usTick  = time.Microsecond
	maxSpan = int64(366 * 24 * time.Hour / time.Microsecond)
)

// Ask is one limit to check for one key in a Take.
type Ask struct {
	// Key names the state. The asks of one Take must share a Redis hash tag
	// ("{...}") so that Redis Cluster can run them in one script; keys made
	// by the stage do.
	Key string
	// Limit is the GCRA limit; Burst must be at least 1 (the stage
	// resolves a configured 0 with filters.LimitOf).
	Limit filters.Limit
	// Cost is how many units the request takes, at least 1.
	Cost int64
	// Shadow makes the ask advisory: it is decided and, if it allows and the
	// Take commits, committed; but its deny does not stop the others.
	Shadow bool
}

// Result is the decision for one Ask.
type Result struct {
	Allowed bool
	// Remaining is how many cost-1 requests the key would still admit right
	// after this decision.
	Remaining int64
	// RetryAfter is how long until this ask would be allowed; 0 when allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the key is back to a full burst.
	ResetAfter time.Duration
}

// Store is where GCRA state lives. Take decides every ask at once and
// writes results[i] for asks[i]; it returns true when every non-shadow ask
// allows. Only then is anything written (each allowed ask's new theoretical
// arrival time); a denied Take changes nothing, so a deny can be cached
// until its RetryAfter. Implementations are safe for concurrent use.
//
// now is the caller's clock. MemoryStore decides at now; RedisStore decides
// at the Redis server's clock, so edge nodes whose clocks disagree share one
// timeline.
type Store interface {
	Take(ctx context.Context, now time.Time, asks []Ask, results []Result) (bool, error)
}

var (
	// ErrAsk is wrapped by errors about an ask no store can decide.
	ErrAsk = errors.New("quota: invalid ask")
	// ErrStore is wrapped by errors from the backing store (Redis down, a
	// timeout, an answer of the wrong shape).
	ErrStore = errors.New("quota: store failed")
)

func checkAsks(asks []Ask, results []Result) error {
	if len(results) < len(asks) {
		return fmt.Errorf("%w: %d results for %d asks", ErrAsk, len(results), len(asks))
	}
	for i := range asks {
		a := &asks[i]
		iv := a.Limit.GCRA(usTick).Interval
		switch {
		case a.Cost < 1:
			return fmt.Errorf("%w: key %q: cost %d below 1", ErrAsk, a.Key, a.Cost)
		case a.Limit.Burst < 1:
			return fmt.Errorf("%w: key %q: burst %d below 1", ErrAsk, a.Key, a.Limit.Burst)
		case a.Limit.Burst > maxSpan/iv || a.Cost > maxSpan/iv:
			return fmt.Errorf("%w: key %q: burst or cost times interval exceeds a year", ErrAsk, a.Key)
		}
	}
	return nil
}

// decide is the GCRA step both stores implement (the Lua script line by
// line): tat is the key's theoretical arrival time (0 for a missing key),
// now the decision time, both in microseconds. It returns the decision and
// the TAT to store if the Take commits.
func decide(tat, now int64, a *Ask) (Result, int64) {
	g := a.Limit.GCRA(usTick)
	next, wait := g.Take(tat, now, a.Cost)
	return Result{
		Allowed:    wait == 0,
		Remaining:  g.Remaining(next, now),
		RetryAfter: time.Duration(wait) * usTick,
		ResetAfter: time.Duration(next-now) * usTick,
	}, next
}
