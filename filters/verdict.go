package filters

import (
	"net/http"
	"time"
)

// Verdict is a stage's decision about one request. The zero value allows.
type Verdict struct {
	// Deny ends the chain; the client gets Status (and Headers).
	Deny bool
	// Drop, with Deny, closes the connection without any response (a WAF
	// "drop" action, a refused client).
	Drop bool
	// Status is the response status of a deny: 403, 429, 413, a 3xx for a
	// redirect action. Zero means 403.
	Status int
	// Stage names the stage that decided; the chain fills it in.
	Stage string
	// Reason is a short machine-friendly cause ("banned", "rate", "anomaly
	// score 10", "quota default"). It goes to logs, never to the client.
	Reason string
	// RuleIDs are the WAF rules that matched, Score their anomaly score.
	RuleIDs []int
	Score   int
	// RuleMessages are the messages of RuleIDs, by index (the rule's msg
	// as it fired; the slice may be shorter): for the console's rule
	// list, which must not ask the WAF for them later.
	RuleMessages []string
	// RetryAfter becomes a Retry-After header (whole seconds, rounded up,
	// at least 1) on a deny.
	RetryAfter time.Duration
	// Headers are added to the response, allowed or denied (RateLimit
	// headers, a redirect's Location). A stage may hand the same map to
	// many verdicts (a limiter's 429 headers): nobody changes it.
	Headers http.Header
	// Overload marks a deny for want of capacity (a 503 from a full
	// evaluation queue): it says nothing about the client, so observers do
	// not count it as a strike against it.
	Overload bool
	// NotClient marks a deny counted against an identity other than the
	// client's address (a quota bucket of an API key or a token claim):
	// whoever sent that identity may be anyone, from any address, so
	// observers that punish addresses do not count it against this one.
	// A stage leaves it false when the identity it counted was the address.
	NotClient bool
	// Shadow marks a deny that a stage in shadow mode would have made; the
	// chain turns it into an allow after reporting it.
	Shadow bool
}

// Allow is the verdict that lets a request pass.
var Allow = Verdict{}

// Attributable reports whether v is a deny that says something about the
// client address: neither a deny for want of capacity (Overload) nor one
// counted against another identity (NotClient). Observers that punish
// addresses (reputation strikes) count only these.
func (v Verdict) Attributable() bool {
	return v.Deny && !v.Overload && !v.NotClient
}

// StatusCode returns the status a deny answers with.
func (v Verdict) StatusCode() int {
	if v.Status == 0 {
		return http.StatusForbidden
	}
	return v.Status
}
