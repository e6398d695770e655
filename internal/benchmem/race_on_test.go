//go:build race

package benchmem

// raceDetector: built with -race, whose shadow memory grows the resident set by several times
// what the program holds (193 MiB resident for 64 MiB held, measured), so resident figures
// say nothing of the program's.
const raceDetector = true
