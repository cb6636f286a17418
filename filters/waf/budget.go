package waf

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/admission"
)

// budget bounds the CPU the stage can be made to spend: CRS evaluations run
// behind two admission gates, one for requests whose body is at most
// large_body_threshold (the small lane) and one for the rest, so that bodies
// whose evaluation costs seconds wait for their own few slots and never hold
// the ones small requests need. A slot is held only while CRS runs (phase 1,
// then phase 2), never while the body arrives: a slow client costs no slot.
type budget struct {
	lanes     [laneCount]*admission.Gate
	threshold int64
	// shape is the config the gates were built from; a reload with the
	// same shape keeps the gates, so that requests in flight across it
	// stay counted.
	shape budgetShape
}

type budgetShape struct {
	maxConcurrent, queue, largeConcurrent, largeQueue int
	queueTimeout                                      filters.Duration
}

// lane indexes budget.lanes; its String is the metric label.
type lane int

const (
	laneSmall lane = iota
	laneLarge
	laneCount
)

func (l lane) String() string {
	if l == laneLarge {
		return "large"
	}
	return "small"
}

// Refusal reasons, also metric label values.
const (
	refusedQueueFull    = "queue_full"
	refusedQueueTimeout = "queue_timeout"
	refusedCanceled     = "canceled"
)

var refusalReasons = [...]string{refusedQueueFull, refusedQueueTimeout, refusedCanceled}

func shapeOf(cfg Config) budgetShape {
	return budgetShape{cfg.MaxConcurrent, cfg.Queue, cfg.LargeBodyConcurrent, cfg.LargeBodyQueue, cfg.QueueTimeout}
}

// newBudget builds the gates of cfg (with defaults), or takes prev's over
// when they have the same shape.
func newBudget(cfg Config, prev *budget) (*budget, error) {
	shape := shapeOf(cfg)
	b := &budget{threshold: int64(cfg.LargeBodyThreshold), shape: shape}
	if prev != nil && prev.shape == shape {
		b.lanes = prev.lanes
		return b, nil
	}
	var err error
	if b.lanes[laneSmall], err = admission.New(shape.maxConcurrent, shape.queue, shape.queueTimeout.D()); err != nil {
		return nil, fmt.Errorf("waf budget: small lane: %w", err)
	}
	if b.lanes[laneLarge], err = admission.New(shape.largeConcurrent, shape.largeQueue, shape.queueTimeout.D()); err != nil {
		return nil, fmt.Errorf("waf budget: large-body lane: %w", err)
	}
	return b, nil
}

// laneFor is the lane of a request whose body is size bytes (by
// Content-Length, or read so far; negative when unknown).
func (b *budget) laneFor(size int64) lane {
	if size > b.threshold {
		return laneLarge
	}
	return laneSmall
}

// admit takes a slot in l for st's request, or sets st's verdict to the
// refusal and returns false. After true the caller must call st.f.budget.release(l).
func (st *txState) admit(l lane) bool {
	err := st.f.budget.lanes[l].Acquire(st.r.HTTP.Context())
	if err == nil {
		return true
	}
	reason := refusedQueueFull
	switch {
	case errors.Is(err, admission.ErrTimeout):
		reason = refusedQueueTimeout
	case errors.Is(err, admission.ErrCanceled):
		reason = refusedCanceled
	}
	st.f.stats.refused(l, reason)
	st.refused = true
	st.verdict = filters.Verdict{
		Deny:       true,
		Status:     http.StatusServiceUnavailable,
		Reason:     "waf " + l.String() + " lane: " + reason,
		RetryAfter: st.f.cfg.QueueTimeout.D(),
		Overload:   true,
	}
	return false
}

func (b *budget) release(l lane) { b.lanes[l].Release() }

// collectMetrics emits the lanes' gauges.
func (b *budget) collectMetrics(emit func(filters.Sample)) {
	for l := range laneCount {
		s := b.lanes[l].State()
		labels := []string{"lane", l.String()}
		emit(filters.Sample{Name: "waf_budget_in_flight", Help: "CRS evaluations running now, per lane.", Kind: filters.Gauge, Value: float64(s.InFlight), Labels: labels})
		emit(filters.Sample{Name: "waf_budget_queued", Help: "Requests waiting for an evaluation slot, per lane.", Kind: filters.Gauge, Value: float64(s.Queued), Labels: labels})
		emit(filters.Sample{Name: "waf_budget_limit", Help: "Evaluation slots, per lane.", Kind: filters.Gauge, Value: float64(b.lanes[l].Limit()), Labels: labels})
	}
}
