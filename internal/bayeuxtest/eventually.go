package bayeuxtest

import (
	"testing"
	"time"
)

// pollInterval is how often Eventually checks its condition.
const pollInterval = 5 * time.Millisecond

// Eventually waits until cond returns true, checking it every few
// milliseconds, and fails t with what (the condition, in words) when it
// has not within the given time. Call it from the test's goroutine.
func Eventually(t testing.TB, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(pollInterval)
	}
}
