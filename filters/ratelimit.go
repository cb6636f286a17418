package filters

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The response fields of draft-ietf-httpapi-ratelimit-headers-10, both
// Structured Field Lists of Items whose value is the policy name (an
// sf-string: callers pass names that need no escaping), written the same
// way by every limiter that refuses with 429 (the volumetric and the quota
// stage), so a client reads one format whichever stage refused it:
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
	HeaderRateLimitPolicy = "Ratelimit-Policy"
	HeaderRateLimit       = "Ratelimit"
)

// RateLimitPolicyItem is the RateLimit-Policy member of policy name, whose
// burst is quota and whose exhausted burst refills in window.
func RateLimitPolicyItem(name string, quota int64, window time.Duration) string {
	return `"` + name + `";q=` + strconv.FormatInt(quota, 10) + ";w=" + strconv.FormatInt(CeilSeconds(window), 10)
}

// RateLimitItem is the RateLimit member of policy name after a decision
// that left remaining requests, with reset the time until the burst is full
// again (allowed) or until the request could pass (denied).
func RateLimitItem(name string, remaining int64, reset time.Duration) string {
	return `"` + name + `";r=` + strconv.FormatInt(remaining, 10) + ";t=" + strconv.FormatInt(CeilSeconds(reset), 10)
}

// RateLimitHeaders joins the members into the two fields; either list may
// be empty (no state is known when a store failed and the request was let
// through), and its field is then left out.
func RateLimitHeaders(policies, states []string) http.Header {
	h := make(http.Header, 2)
	// The two fields' values share one array (one allocation on every
	// limited request instead of two), each capped at its own element so
	// that an append to one copies rather than overwrite the other.
	vals := make([]string, 0, 2)
	if len(policies) > 0 {
		vals = append(vals, strings.Join(policies, ", "))
		h[HeaderRateLimitPolicy] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if len(states) > 0 {
		vals = append(vals, strings.Join(states, ", "))
		h[HeaderRateLimit] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return h
}

// CeilSeconds rounds d up to whole seconds, at least 0.
func CeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
