package clocktest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/regentkv/regent/clock/clocktest"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestStepRunsDueCallbacksInOrder(t *testing.T) {
	f := clocktest.New(start)
	var ran []string
	f.AfterFunc(3*time.Second, func() { ran = append(ran, "3s") })
	f.AfterFunc(time.Second, func() { ran = append(ran, "1s") })
	f.AfterFunc(2*time.Second, func() {
		ran = append(ran, "2s")
		// Armed from a callback and already due: runs in the same Step.
		f.AfterFunc(0, func() { ran = append(ran, "2s+0") })
	})
	f.Step(time.Second - 1)
	if len(ran) != 0 {
		t.Fatalf("ran %v before anything was due", ran)
	}
	f.Step(5 * time.Second)
	if want := []string{"1s", "2s", "2s+0", "3s"}; !slices.Equal(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
	if n := f.Armed(); n != 0 {
		t.Fatalf("Armed = %d, want 0", n)
	}
	if got, want := f.Now(), start.Add(6*time.Second-1); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
}

func TestStopAndResetFollowTimeAfterFunc(t *testing.T) {
	f := clocktest.New(start)
	runs := 0
	tm := f.AfterFunc(time.Second, func() { runs++ })
	if !tm.Stop() {
		t.Fatal("Stop of an armed timer = false, want true")
	}
	if tm.Stop() {
		t.Fatal("second Stop = true, want false")
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a stopped timer = true, want false (a new run is scheduled)")
	}
	if !tm.Reset(2 * time.Second) {
		t.Fatal("Reset of an armed timer = false, want true (rescheduled)")
	}
	f.Step(time.Second)
	if runs != 0 {
		t.Fatalf("runs = %d at 1s, want 0: the Reset moved it to 2s", runs)
	}
	if due, ok := f.NextDue(); !ok || !due.Equal(start.Add(2*time.Second)) {
		t.Fatalf("NextDue = %v, %v; want %v, true", due, ok, start.Add(2*time.Second))
	}
	f.Set(start.Add(2 * time.Second))
	if runs != 1 {
		t.Fatalf("runs = %d, want 1", runs)
	}
	if tm.Stop() {
		t.Fatal("Stop after the run = true, want false")
	}
	if _, ok := f.NextDue(); ok {
		t.Fatal("NextDue reports a timer, want none")
	}
}
