// Package bench holds side-by-side benchmarks of edgeguard against other
// implementations of the same job: Go benchmarks here (the Redis quota
// against redis_rate and throttled), and run.sh, which loads whole
// processes (edgeguard, nginx, nginx + ModSecurity + CRS, Coraza, a bare
// ReverseProxy) with wrk, built from the small programs under cmd/. It is
// its own Go module so that the libraries it compares against never enter
// edgeguard's go.mod.
package bench
