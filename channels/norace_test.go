//go:build !race

package channels

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
