//go:build race

package waf

// raceDetector: the CRS regression suite is skipped under -race (about ten
// times slower there, and it exercises Coraza more than our code); `make
// test` runs it on a line of its own without -race.
const raceDetector = true
