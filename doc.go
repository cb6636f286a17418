// Package edgeguard is the public Go API of the edge filter: New builds the
// filter chain a config describes (client IP, reputation, volumetric, WAF,
// quota) and returns a Guard, an http.Handler that filters each request and
// forwards what passes, or wraps any handler of yours as middleware. New
// needs only the stages (DefaultConfig gives the demo's); the listeners and
// the log are the binary's. ServeAuth answers the forward-auth requests of
// nginx, Traefik and Envoy; Explain is a dry run of the chain on one request.
//
// The chain itself lives in package filters; each stage in its own package
// under filters/; client-IP resolution in ipparse; the file format in config.
// This package only wires them together, measures them and answers denies.
package edgeguard
