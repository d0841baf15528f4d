//go:build race

package channels

// raceEnabled reports whether the race detector is on; under it sync.Pool
// deliberately drops items, so pooled-allocation counts are not checked.
const raceEnabled = true
