package filters

import (
	"net/http"
	"time"
)

// Stage is a filter with the mode the config gives it.
type Stage struct {
	Filter Filter
	Mode   Mode
}

// StageTimer is told how long each stage took and what it decided; the root
// package feeds it to metrics. It must be quick: it runs on the request path.
type StageTimer func(stage string, took time.Duration, v Verdict)

// Chain runs stages in order. The first deny from a stage in block mode ends
// the run; a deny from a stage in shadow mode (or marked Shadow by the stage
// itself) is reported and then treated as an allow. Stages in off mode are
// not called. Every deny, shadow or not, goes to every observer.
//
// A Chain is immutable once built and safe for concurrent use; a reload
// builds a new one.
type Chain struct {
	stages    []Stage
	observers []Observer
	timer     StageTimer
	clock     func() time.Time
}

// NewChain builds a chain over stages, dropping those whose mode is off.
func NewChain(stages []Stage, observers []Observer, timer StageTimer) *Chain {
	c := &Chain{observers: observers, timer: timer}
	for _, s := range stages {
		if s.Mode == ModeOff || s.Filter == nil {
			continue
		}
		if s.Mode == "" {
			s.Mode = ModeBlock
		}
		c.stages = append(c.stages, s)
	}
	return c
}

// WithClock makes c move r.Now to clock's reading after each stage, so
// that every stage after the first decides at its own instant and what
// follows the chain (the forwarder) finds the time the last stage ended;
// the stage timer takes its durations from the same readings. It returns
// c; call it before c is used. A limiter that runs
// after a slow stage (the WAF spends seconds on a large body) must meter at
// its own instant: metered at the arrival time, the requests that arrived
// later but overtook this one have already used up its allowance, and a
// burst of slow requests is refused by a limit far above the load.
func (c *Chain) WithClock(clock func() time.Time) *Chain {
	c.clock = clock
	return c
}

// Stages returns the stages the chain runs, in order.
func (c *Chain) Stages() []Stage { return c.stages }

// Run passes r through the chain and returns the verdict: the first
// enforced deny, or an allow carrying every header the stages asked to add.
// The allow's Headers may be a stage's own map: read it, never change it.
func (c *Chain) Run(r *Request) Verdict {
	r.chain = c
	var (
		headers http.Header
		merged  bool // headers is the chain's own map, not a stage's
	)
	// One reading at each stage's end serves both the timer and the next
	// stage's r.Now: on a cheap stage a clock read is a visible part of
	// its cost.
	timed := c.timer != nil
	var mark time.Time
	if timed {
		mark = c.read()
	}
	for _, s := range c.stages {
		v := s.Filter.Check(r)
		if timed || c.clock != nil {
			now := c.read()
			if timed {
				c.timer(s.Filter.Name(), now.Sub(mark), v)
				mark = now
			}
			if c.clock != nil {
				r.Now = now
			}
		}
		if v.Deny {
			v.Stage = s.Filter.Name()
			if s.Mode == ModeShadow {
				v.Shadow = true
			}
			c.report(r, v)
			if !v.Shadow {
				if len(headers) > 0 {
					// v.Headers may be the stage's shared map: merge
					// into a new one.
					own := make(http.Header, len(v.Headers)+len(headers))
					mergeHeaders(&own, v.Headers)
					mergeHeaders(&own, headers)
					v.Headers = own
				}
				return v
			}
			r.Annotate(v.Stage, "shadow deny: "+v.Reason)
		}
		switch {
		case len(v.Headers) == 0:
		case headers == nil:
			headers = v.Headers // the common case: one stage adds headers
		case !merged:
			own := make(http.Header, len(headers)+len(v.Headers))
			mergeHeaders(&own, headers)
			mergeHeaders(&own, v.Headers)
			headers, merged = own, true
		default:
			mergeHeaders(&headers, v.Headers)
		}
	}
	return Verdict{Headers: headers}
}

// read is the clock's reading, or the wall clock's without one.
func (c *Chain) read() time.Time {
	if c.clock != nil {
		return c.clock()
	}
	return time.Now()
}

func (c *Chain) report(r *Request, v Verdict) {
	for _, o := range c.observers {
		o.Observe(Event{Request: r, Verdict: v})
	}
}

// Explain runs every stage, whatever the others decide and whatever their
// mode, and returns each verdict in order. Observers are not told: explain
// must not ban anyone. Stages with state (limiters) do count the request.
func (c *Chain) Explain(r *Request) []Verdict {
	out := make([]Verdict, 0, len(c.stages))
	for _, s := range c.stages {
		v := s.Filter.Check(r)
		v.Stage = s.Filter.Name()
		v.Shadow = v.Deny && s.Mode == ModeShadow
		out = append(out, v)
	}
	return out
}

// mergeHeaders adds src's values to *dst without disturbing src, which may
// be a stage's shared, read-only header map.
func mergeHeaders(dst *http.Header, src http.Header) {
	if len(src) == 0 {
		return
	}
	if *dst == nil {
		*dst = make(http.Header, len(src))
	}
	for k, vs := range src {
		(*dst)[k] = append((*dst)[k], vs...)
	}
}
