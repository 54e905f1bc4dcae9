package workqueue_test

import (
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond) // polling interval, not ordering
	}
}

// recv waits for a value from ch or fails.
func recv[V any](t *testing.T, ch <-chan V, what string) V {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// blocked asserts that nothing has arrived on ch yet. It cannot prove that
// nothing ever will; a failure, though, is always a real bug.
func blocked[V any](t *testing.T, ch <-chan V, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: got %v, want nothing yet", what, v)
	default:
	}
}

// advance moves the time of the calling testing/synctest bubble forward by
// d, then returns once every other goroutine of the bubble is durably
// blocked or gone: the timer callbacks due by then have run to completion.
// Call it only inside a bubble.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// epoch is the start of the injected clocks (clocktest.Fake, lateClock);
// tests in a synctest bubble run on the bubble's own time instead.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
