package waf

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/edgeguard/edgeguard/filters"
)

// stats are the stage's counters. They outlive a reload (the new Filter
// takes them over), as Prometheus counters must.
type stats struct {
	evaluations atomic.Uint64
	bodyRejects atomic.Uint64
	// budgetRefusals counts 503s per lane and reason (refusalReasons).
	budgetRefusals [laneCount][len(refusalReasons)]atomic.Uint64

	mu sync.Mutex
	// Keys are rule ids and action names from the loaded rule set: a
	// bounded set, never client data.
	interruptions map[interruptKey]uint64
	matches       map[int]uint64
}

type interruptKey struct {
	rule   int
	action string
	shadow bool
}

func newStats() *stats {
	return &stats{interruptions: map[interruptKey]uint64{}, matches: map[int]uint64{}}
}

func (s *stats) interrupted(rule int, action string, shadow bool) {
	s.mu.Lock()
	s.interruptions[interruptKey{rule, action, shadow}]++
	s.mu.Unlock()
}

func (s *stats) refused(l lane, reason string) {
	for i, r := range refusalReasons {
		if r == reason {
			s.budgetRefusals[l][i].Add(1)
		}
	}
}

func (s *stats) matched(rule int) {
	s.mu.Lock()
	s.matches[rule]++
	s.mu.Unlock()
}

// CollectMetrics emits edgeguard_waf_evaluations_total,
// edgeguard_waf_interruptions_total{rule_id,action,shadow},
// edgeguard_waf_rule_matches_total{rule_id} (rules matched in interrupted
// or shadow-interrupted transactions), edgeguard_waf_body_rejects_total,
// edgeguard_waf_budget_refusals_total{lane,reason} and the budget's gauges
// edgeguard_waf_budget_{in_flight,queued,limit}{lane}.
func (f *Filter) CollectMetrics(emit func(filters.Sample)) {
	s := f.stats
	emit(filters.Sample{Name: "waf_evaluations_total", Help: "Requests evaluated by the WAF stage.", Kind: filters.Counter, Value: float64(s.evaluations.Load())})
	emit(filters.Sample{Name: "waf_body_rejects_total", Help: "Requests refused with 413 because the body was over body_limit.", Kind: filters.Counter, Value: float64(s.bodyRejects.Load())})
	for l := range laneCount {
		for i, reason := range refusalReasons {
			emit(filters.Sample{
				Name: "waf_budget_refusals_total", Help: "Requests answered 503 because the lane's evaluation slots and queue were taken (queue_full), the wait ran out (queue_timeout) or the client left while waiting (canceled).",
				Kind: filters.Counter, Value: float64(s.budgetRefusals[l][i].Load()), Labels: []string{"lane", l.String(), "reason", reason},
			})
		}
	}
	f.budget.collectMetrics(emit)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range s.interruptions {
		emit(filters.Sample{
			Name: "waf_interruptions_total", Help: "Transactions interrupted (or, shadow=true, that would have been) by the rule that decided.",
			Kind: filters.Counter, Value: float64(n),
			Labels: []string{"rule_id", strconv.Itoa(k.rule), "action", k.action, "shadow", strconv.FormatBool(k.shadow)},
		})
	}
	for id, n := range s.matches {
		emit(filters.Sample{
			Name: "waf_rule_matches_total", Help: "Rule matches within interrupted or shadow-interrupted transactions.",
			Kind: filters.Counter, Value: float64(n), Labels: []string{"rule_id", strconv.Itoa(id)},
		})
	}
}
