package workqueue_test

import (
	"testing"
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

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
