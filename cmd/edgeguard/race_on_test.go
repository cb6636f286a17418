//go:build race

package main

// raceDetector: timing tests (the WAF flood test) are skipped under -race,
// which slows CRS several times and unevenly; CI runs them without it.
const raceDetector = true
