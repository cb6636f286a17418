// Package forward owns the last step of a request's way through edgeguard:
// getting it to a healthy backend without letting a traffic spike take the
// backends down. It routes by host and path prefix to named pools, balances
// within a pool (smooth weighted round robin, least outstanding, consistent
// hashing on the client key), keeps backends' health by active checks and
// passive ejection (capped, so that clients cannot eject a whole pool),
// retries only what is safe to retry, and shields a route as a
// whole with a fleet-wide rate cap, a concurrency limit with a bounded
// waiting room, and a closed (sold-out) switch.
//
// The filter chain runs before the forwarder; the forwarder reads the
// chain's view of the request (filters.Request) from the request context.
package forward
