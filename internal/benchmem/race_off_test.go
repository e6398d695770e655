//go:build !race

package benchmem

const raceDetector = false
