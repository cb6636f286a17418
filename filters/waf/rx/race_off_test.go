//go:build !race

package rx

const raceDetector = false
