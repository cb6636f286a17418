// Package activity owns the live picture of recent traffic that the admin
// console shows: requests per second by outcome and by deciding stage over
// the last 15 minutes with their latency, the clients sending the most
// requests and the most refused ones, the WAF rules firing most, and the
// last refused requests. It is not a second bookkeeping: the Guard feeds it
// from the calls that count its metrics, once per finished request.
//
// # What it holds
//
//   - A ring of Window (900) one-second buckets. Each counts the requests
//     that ended in its second by Outcome and by deciding stage, and their
//     latency in a fixed log-linear histogram (16 exact 1 µs buckets, then
//     8 per power of two up to 2^27 µs ≈ 134 s): the 50th and 99th
//     percentile over any span of seconds come from summing buckets, off
//     by at most LatencyError (6.25%) of the true value plus 1 µs. Counting
//     is a few atomic additions; a bucket is cleared under a lock once, by
//     the first request of its new second.
//   - Three Space-Saving top-k lists (Metwally, Agrawal and El Abbadi,
//     2005) of k slots (DefaultK 64): clients by requests, clients by
//     refusals, WAF rules by firings with their message. Each reports a
//     count and an error: the true count lies in [count−error, count], and
//     any key with more than n/k of the n additions of a window is in the
//     list. The lists count in 15-minute windows and report the current
//     one merged with the one before, so they show the last 15 to 30
//     minutes, not the life of the process.
//   - A ring of the last BlockedSize (256) refused requests: time, request
//     id, client and how it was learned, route, method, path without its
//     query (cut at 256 bytes), stage, status, reason, rule ids with their
//     messages, and the verdicts of the stages that ran. Never a body, a
//     header, a cookie, a query string or a credential.
//
// # Memory
//
// Fixed when the Recorder is made, whatever the traffic: a million
// distinct clients take the same k slots as one. MemoryBytes states the
// bound, every string kept at its longest and every allocation rounded up
// as the allocator does: about 3.1 MB with the default k, of which 0.8 MB
// are the series' buckets, 2.1 MB the refusal ring and 0.1 MB the top
// lists. (Filled at its worst, a Recorder was measured holding 2.8 MB.)
//
// # Time
//
// Time is an argument: Record takes the request's arrival and end, the
// readers take now. Nothing here reads the clock, so tests walk fixed
// instants.
package activity
