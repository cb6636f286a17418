// Package edgeguardcaddy is edgeguard as a Caddy v2 HTTP handler: module
// http.handlers.edgeguard, Caddyfile directive edgeguard. It runs the same
// chain as the binary and the Go middleware (reputation, volumetric, WAF,
// quota), configured by the same stage structs, on the client address
// Caddy resolved (its trusted_proxies and PROXY protocol listener wrapper
// decide, never a header edgeguard re-reads). It lives in a Go module of
// its own so that the core never imports Caddy.
package edgeguardcaddy
