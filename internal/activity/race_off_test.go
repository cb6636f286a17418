//go:build !race

package activity

const raceDetector = false
