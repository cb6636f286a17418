package quota

import (
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// The RateLimit fields are written by filters (RateLimitHeaders), the same
// for every stage that refuses with 429; these say what a quota policy
// puts in them.

// policyItem is the RateLimit-Policy member for a policy with limit l: its
// burst, refilled in burst × interval at the stores' microsecond tick.
func policyItem(name string, l filters.Limit) string {
	return filters.RateLimitPolicyItem(name, l.Burst, time.Duration(l.GCRA(usTick).Span())*usTick)
}

// stateItem is the RateLimit member for one decision.
func stateItem(name string, r Result) string {
	t := r.ResetAfter
	if !r.Allowed {
		t = r.RetryAfter
	}
	return filters.RateLimitItem(name, r.Remaining, t)
}
