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
// chain's view of the request (filters.Request) from the request context
// (ServeHTTP), or takes it as an argument (Forward, the Guard's way).
//
// Where to find what:
//
//   - config.go: the configuration (routes, pools, shields, timeouts) and
//     its validation.
//   - forward.go: the Forwarder as a whole: New, what a reload carries
//     over, Close.
//   - route.go: which route a request takes (host, path prefix, the
//     ambiguous-path refusal) and how a configured route is built.
//   - proxy.go: one request's way through: the closed switch, the route
//     cap and concurrency gate, the backend pick, the refusals.
//   - rewrite.go: the outbound request's client-address and forwarding
//     headers.
//   - transport.go: retries and the per-backend accounting of each try.
//   - pool.go, health.go: balancing, passive ejection, active checks.
//   - shield.go, switch.go: the route cap's stores and the closed switch,
//     per node and fleet-wide.
//   - buffers.go: copy buffers and the send timeout on writes to clients.
//   - admin.go, metrics.go: the admin API and the metrics.
package forward
