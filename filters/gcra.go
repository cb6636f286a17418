package filters

import "time"

// Limit is a rate limit as every limiter of edgeguard reads it: the
// volumetric stage per client, the quota stage per client and policy, the
// forward shield per route.
type Limit struct {
	// Rate is the steady rate a key may keep up forever; one request of
	// cost 1 takes the emission interval Rate.Interval().
	Rate Rate
	// Burst is how many cost-1 requests a key that has been idle long
	// enough may send at the same instant; the next one is refused. Each
	// interval of silence gives one back. A request whose cost exceeds
	// Burst can never conform. This is the bucket size of
	// golang.org/x/time/rate and go-redis/redis_rate's Burst. A limit is
	// applied with Burst at least 1; LimitOf resolves a configured 0.
	Burst int64
}

// LimitOf returns the limit of rate with burst, where burst 0 (a config
// that leaves it out) means rate.Count: "50/s" lets an idle key send 50 at
// once.
func LimitOf(rate Rate, burst int64) Limit {
	if burst == 0 {
		burst = rate.Count
	}
	return Limit{Rate: rate, Burst: burst}
}

// GCRA returns l's arithmetic in whole ticks of tick: the emission
// interval is rounded down to a whole tick, at least 1, so a rate above
// one event per tick is served as one per tick.
func (l Limit) GCRA(tick time.Duration) GCRA {
	return GCRA{Interval: max(1, int64(l.Rate.Interval()/tick)), Burst: l.Burst}
}

// GCRA is the generic cell rate algorithm (the "leaky bucket as a meter")
// of one limit, in integer ticks: nanoseconds in this process, microseconds
// where it must agree with the Redis script (Redis's TIME has microsecond
// resolution, and Lua numbers are exact integers only below 2^53).
//
// A key's whole state is its theoretical arrival time (TAT). A request of
// cost n at now conforms when max(TAT, now) + n×Interval − now is at most
// Burst×Interval, and then moves the TAT there; a refused request changes
// nothing, so hammering a closed bucket does not push its reopening
// further away. A TAT at or before now says nothing an absent key would
// not: the key's bucket has drained.
//
// The methods do no overflow checks: the caller bounds its times and
// Burst×Interval so that every sum of a time and Burst+1 intervals fits an
// int64.
type GCRA struct {
	// Interval is T, the ticks one unit of cost takes; at least 1.
	Interval int64
	// Burst is Limit.Burst; at least 1.
	Burst int64
}

// Take decides a request of cost units at now from a key whose TAT is tat
// (now, or anything earlier, for a key never seen). When it conforms, wait
// is 0 and next is the TAT to store. When it does not, wait is the ticks
// until the same request would conform (above 0) and next is max(tat,
// now), the key's state unchanged.
func (g GCRA) Take(tat, now, cost int64) (next, wait int64) {
	tat = max(tat, now)
	next = tat + cost*g.Interval
	if wait = next - now - g.Burst*g.Interval; wait > 0 {
		return tat, wait
	}
	return next, 0
}

// Span is Burst×Interval: the debt a full bucket holds, that is the ticks
// an idle key takes to get its whole burst back after spending it.
func (g GCRA) Span() int64 { return g.Burst * g.Interval }

// Remaining is how many more cost-1 requests a key whose TAT is tat would
// admit at now, at least 0 (a burst lowered by a reload can leave a key
// owing more than the new burst).
func (g GCRA) Remaining(tat, now int64) int64 {
	return max(0, (now+g.Span()-max(tat, now))/g.Interval)
}
