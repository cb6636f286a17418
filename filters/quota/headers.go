package quota

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// The response fields of draft-ietf-httpapi-ratelimit-headers-10, both
// Structured Field Lists of Items whose value is the policy name (an sf-string:
// policy names are validated to need no escaping):
//
//	RateLimit-Policy: "default";q=50;w=5
//	RateLimit: "default";r=7;t=1
//
// A GCRA limit is described as the quota its burst gives: q is the burst
// (what a fresh client may spend at once) and w the seconds in which an
// exhausted burst refills (burst × interval, rounded up). r is what remains
// after this request and t the seconds until the burst is full again; on a
// deny, t is the seconds until the denied request could pass, and
// Retry-After is never below it.
const (
	headerPolicy    = "Ratelimit-Policy"
	headerRateLimit = "Ratelimit"
)

// policyItem is the RateLimit-Policy member for a policy with limit l.
func policyItem(name string, l filters.Limit) string {
	w := ceilSeconds(time.Duration(l.GCRA(usTick).Span()) * usTick)
	return `"` + name + `";q=` + strconv.FormatInt(l.Burst, 10) + ";w=" + strconv.FormatInt(w, 10)
}

// stateItem is the RateLimit member for one decision.
func stateItem(name string, r Result) string {
	t := r.ResetAfter
	if !r.Allowed {
		t = r.RetryAfter
	}
	return `"` + name + `";r=` + strconv.FormatInt(r.Remaining, 10) + ";t=" + strconv.FormatInt(ceilSeconds(t), 10)
}

// ceilSeconds rounds d up to whole seconds, at least 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// buildHeaders joins the members into the two fields; states may be empty
// when no decision is known (on_error: allow).
func buildHeaders(policies, states []string) http.Header {
	h := make(http.Header, 2)
	if len(policies) > 0 {
		h[headerPolicy] = []string{strings.Join(policies, ", ")}
	}
	if len(states) > 0 {
		h[headerRateLimit] = []string{strings.Join(states, ", ")}
	}
	return h
}
