//go:build race

package rx

// raceDetector: the race detector slows Go's regexp about tenfold, so the
// CRS pattern test runs its short sample.
const raceDetector = true
