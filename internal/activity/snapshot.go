package activity

import (
	"net/netip"
	"time"
)

// Series returns the n seconds (at most Window) ending with now's, oldest
// first; a second in which no request ended is there, with zeros.
func (r *Recorder) Series(now time.Time, n int) []Point { return r.series.points(now, n) }

// Latency returns the 50th and 99th percentile, in milliseconds, of the
// time from arrival to the end of the answer of the requests that ended in
// the n seconds up to now's (0 when none did). Each is off by at most
// LatencyError of the true value, plus a microsecond.
func (r *Recorder) Latency(now time.Time, n int) (p50, p99 float64) {
	h := r.series.latency(now, n)
	return quantile(h, 0.5), quantile(h, 0.99)
}

// TopClients returns the clients with the most requests over the last 15
// to 30 minutes, the most first (see topK for the window and the bounds).
func (r *Recorder) TopClients(now time.Time) []Hitter[netip.Addr, struct{}] {
	return r.clients.top(now)
}

// TopDenied returns the clients with the most refused requests, as
// TopClients.
func (r *Recorder) TopDenied(now time.Time) []Hitter[netip.Addr, struct{}] {
	return r.deniers.top(now)
}

// TopRules returns the WAF rules that fired most, with their latest
// message, as TopClients.
func (r *Recorder) TopRules(now time.Time) []Hitter[int, string] { return r.rules.top(now) }

// Blocked returns the last BlockedSize refusals, the latest first.
func (r *Recorder) Blocked() []Blocked { return r.refusals.newestFirst() }

// FindBlocked returns the latest refusal of the request with id, if the
// ring still holds it.
func (r *Recorder) FindBlocked(id string) (Blocked, bool) { return r.refusals.find(id) }
