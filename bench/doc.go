// Package bench holds side-by-side benchmarks of edgeguard against other
// implementations of the same job. It is its own Go module so that the
// libraries it compares against never enter edgeguard's go.mod.
package bench
