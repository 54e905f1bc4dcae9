package poll

import (
	"testing"
	"time"
)

// Interval is the pause between two checks of a condition.
const Interval = 5 * time.Millisecond

// Until checks cond every Interval and fails the test if it does not hold
// within timeout; what names the awaited condition in the failure.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	UntilFunc(t, timeout, func() string { return what }, cond)
}

// UntilFunc is Until with a failure message computed at the deadline, so
// that it can show the state that did not converge.
func UntilFunc(t testing.TB, timeout time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %s", timeout, what())
		}
		time.Sleep(Interval) // polling interval, not ordering
	}
}
