package workqueue_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/regentkv/regent/clock"
	"github.com/regentkv/regent/clock/clocktest"
	"github.com/regentkv/regent/workqueue"
)

func fakeQueue[T comparable]() (*workqueue.Queue[T], *clocktest.Fake) {
	clock := clocktest.New(epoch)
	return workqueue.New(workqueue.Config[T]{Clock: clock}), clock
}

func TestAddAfterWaitsForTheDelay(t *testing.T) {
	q, clock := fakeQueue[string]()
	defer q.ShutDown()
	q.AddAfter("a", 10*time.Second)
	if n := q.Len(); n != 0 {
		t.Fatalf("Len right after AddAfter = %d, want 0", n)
	}
	clock.Step(10*time.Second - 1)
	if n := q.Len(); n != 0 {
		t.Fatalf("Len 1ns before due = %d, want 0", n)
	}
	clock.Step(1)
	if n := q.Len(); n != 1 {
		t.Fatalf("Len when due = %d, want 1", n)
	}
	if got := mustGet(t, q); got != "a" {
		t.Fatalf("Get = %q, want a", got)
	}
	q.Done("a")
	if n := clock.Armed(); n != 0 {
		t.Fatalf("armed timers with nothing waiting = %d, want 0", n)
	}
}

func TestAddAfterNonPositiveIsImmediate(t *testing.T) {
	q, _ := fakeQueue[string]()
	defer q.ShutDown()
	q.AddAfter("zero", 0)
	q.AddAfter("negative", -time.Second)
	if n := q.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
}

func TestAddAfterKeepsTheEarlierTime(t *testing.T) {
	tests := []struct {
		name         string
		first, again time.Duration
		due          time.Duration
	}{
		{"later re-add is ignored", 5 * time.Second, 10 * time.Second, 5 * time.Second},
		{"earlier re-add wins", 10 * time.Second, 5 * time.Second, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, clock := fakeQueue[string]()
			defer q.ShutDown()
			q.AddAfter("a", tc.first)
			q.AddAfter("a", tc.again)
			clock.Step(tc.due - 1)
			if n := q.Len(); n != 0 {
				t.Fatalf("Len before %v = %d, want 0", tc.due, n)
			}
			clock.Step(1)
			if n := q.Len(); n != 1 {
				t.Fatalf("Len at %v = %d, want 1", tc.due, n)
			}
			q.Done(mustGet(t, q))
			clock.Step(time.Minute)
			if n := q.Len(); n != 0 {
				t.Fatalf("Len after the later time = %d, want 0: one AddAfter item runs once", n)
			}
		})
	}
}

func TestAddAfterReleasesInDueOrder(t *testing.T) {
	q, clock := fakeQueue[string]()
	defer q.ShutDown()
	q.AddAfter("c", 3*time.Second)
	q.AddAfter("a", 1*time.Second)
	q.AddAfter("b", 2*time.Second)
	q.AddAfter("c", 500*time.Millisecond) // moves c to the front
	clock.Step(5 * time.Second)
	for _, want := range []string{"c", "a", "b"} {
		if got := mustGet(t, q); got != want {
			t.Fatalf("Get = %q, want %q", got, want)
		}
		q.Done(want)
	}
}

func TestAddAfterDuplicateOfPendingItemCollapses(t *testing.T) {
	q, clock := fakeQueue[string]()
	defer q.ShutDown()
	q.Add("a")
	q.AddAfter("a", time.Second)
	clock.Step(time.Second)
	if n := q.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1: a was still pending when its delay ended", n)
	}
}

// One timer for the whole queue, however many items wait, and no goroutine.
func TestAddAfterUsesOneTimerAndNoGoroutine(t *testing.T) {
	q, clock := fakeQueue[int]()
	defer q.ShutDown()
	before := runtime.NumGoroutine()
	const n = 10000
	for i := range n {
		q.AddAfter(i, time.Duration(n-i)*time.Millisecond)
	}
	if got := clock.Armed(); got != 1 {
		t.Fatalf("armed timers = %d, want 1", got)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("goroutines grew from %d to %d", before, after)
	}
	if next, _ := clock.NextDue(); !next.Equal(epoch.Add(time.Millisecond)) {
		t.Fatalf("timer due at %v, want %v (the earliest item)", next, epoch.Add(time.Millisecond))
	}
	clock.Step(n * time.Millisecond)
	if got := q.Len(); got != n {
		t.Fatalf("Len = %d, want %d", got, n)
	}
	for i := n - 1; i >= 0; i-- { // latest added was due first
		if got := mustGet(t, q); got != i {
			t.Fatalf("Get = %d, want %d", got, i)
		}
		q.Done(i)
	}
}

// Lowering the due time of the same items over and over leaves outdated
// entries behind; they must neither resurface as duplicates nor pile up.
func TestAddAfterRepeatedLoweringStaysCorrect(t *testing.T) {
	q, clock := fakeQueue[int]()
	defer q.ShutDown()
	for round := 100; round > 0; round-- {
		for i := range 10 {
			q.AddAfter(i, time.Duration(round)*time.Second)
		}
	}
	clock.Step(time.Second)
	if n := q.Len(); n != 10 {
		t.Fatalf("Len = %d, want 10", n)
	}
	for range 10 {
		q.Done(mustGet(t, q))
	}
	clock.Step(200 * time.Second)
	if n := q.Len(); n != 0 {
		t.Fatalf("Len after the outdated times = %d, want 0", n)
	}
}

func TestShutDownDropsDelayedItems(t *testing.T) {
	q, clock := fakeQueue[string]()
	q.AddAfter("a", time.Second)
	q.ShutDown()
	if n := clock.Armed(); n != 0 {
		t.Fatalf("armed timers after ShutDown = %d, want 0", n)
	}
	q.AddAfter("b", time.Second) // ignored
	clock.Step(time.Hour)
	if _, shutdown := q.Get(); !shutdown {
		t.Fatal("Get: want shutdown; delayed items are dropped, not waited for")
	}
}

func TestAddAfterRealClock(t *testing.T) {
	q := newQueue[string]()
	start := time.Now()
	q.AddAfter("soon", time.Millisecond)
	q.AddAfter("never", time.Hour)
	got := mustGet(t, q)
	if got != "soon" {
		t.Fatalf("Get = %q, want soon", got)
	}
	if waited := time.Since(start); waited < time.Millisecond {
		t.Fatalf("Get returned after %v, before the 1ms delay", waited)
	}
	q.Done(got)
	// ShutDown must not wait for the hour-long timer, and must leave no
	// goroutine behind (goleak checks at exit).
	q.ShutDown()
}

// A worker blocked in Get is woken by the timer, with no other activity.
func TestAddAfterWakesBlockedWorker(t *testing.T) {
	q := newQueue[int]()
	defer q.ShutDown()
	got := make(chan int, 1)
	go func() {
		item, err := q.GetCtx(context.Background())
		if err != nil {
			t.Errorf("GetCtx: %v", err)
		}
		got <- item
	}()
	q.AddAfter(42, 2*time.Millisecond)
	if v := recv(t, got, "delayed item"); v != 42 {
		t.Fatalf("Get = %d, want 42", v)
	}
	q.Done(42)
}

// ShutDown racing with timer callbacks must neither deadlock nor leave a
// callback running after it returns (goleak checks the real-clock case).
func TestShutDownRacesTimerCallbacks(t *testing.T) {
	t.Run("fake clock", func(t *testing.T) {
		for range 50 {
			q, clock := fakeQueue[int]()
			for i := range 20 {
				q.AddAfter(i, time.Duration(i+1)*time.Millisecond)
			}
			stepped := make(chan struct{})
			go func() {
				defer close(stepped)
				for range 20 {
					clock.Step(time.Millisecond)
				}
			}()
			q.ShutDown()
			recv(t, stepped, "clock steps")
		}
	})
	t.Run("real clock", func(t *testing.T) {
		for range 50 {
			q := newQueue[int]()
			for i := range 20 {
				q.AddAfter(i, time.Duration(i)*time.Microsecond+time.Nanosecond)
			}
			q.ShutDown()
		}
	})
}

// deafClock's timers never fire, so only Get itself can release items.
type deafClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *deafClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *deafClock) AfterFunc(time.Duration, func()) clock.Timer { return deafTimer{} }

type deafTimer struct{}

func (deafTimer) Stop() bool               { return true }
func (deafTimer) Reset(time.Duration) bool { return true }

func TestGetTakesDueItemsWithoutTheTimer(t *testing.T) {
	clock := &deafClock{now: epoch}
	q := workqueue.New(workqueue.Config[string]{Clock: clock})
	defer q.ShutDown()
	q.AddAfter("b", 2*time.Second)
	q.AddAfter("a", time.Second)
	q.AddAfter("later", time.Hour)
	clock.mu.Lock()
	clock.now = clock.now.Add(2 * time.Second)
	clock.mu.Unlock()
	for _, want := range []string{"a", "b"} {
		if got := mustGet(t, q); got != want {
			t.Fatalf("Get = %q, want %q", got, want)
		}
		q.Done(want)
	}
}

// lateClock's time moves only when told to, and its timers never fire: a
// timer that is late, as Go's timers are on a loaded machine.
type lateClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *lateClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *lateClock) Step(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *lateClock) AfterFunc(time.Duration, func()) clock.Timer { return lateTimer{} }

type lateTimer struct{}

func (lateTimer) Stop() bool               { return true }
func (lateTimer) Reset(time.Duration) bool { return true }

// A delayed item whose time has come by the queue's clock is due, whether
// or not its timer has fired yet: shutting down must hand it out, and drop
// only what is not due.
func TestShutDownKeepsDueDelayedItems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drain bool
	}{{"ShutDown", false}, {"ShutDownWithDrain", true}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &lateClock{now: epoch}
			q := workqueue.New(workqueue.Config[string]{Clock: clock})
			q.AddAfter("due", time.Millisecond)
			q.AddAfter("later", time.Hour)
			clock.Step(2 * time.Millisecond) // "due" is due; its timer has not fired
			// The shutdown starts before any worker runs, so no Get can move
			// the item to the FIFO first.
			drained := make(chan struct{})
			if tc.drain {
				go func() { defer close(drained); q.ShutDownWithDrain() }()
				deadline := time.Now().Add(10 * time.Second)
				for !q.ShuttingDown() {
					if time.Now().After(deadline) {
						t.Fatal("ShutDownWithDrain did not start within 10s")
					}
					runtime.Gosched()
				}
			} else {
				q.ShutDown()
				close(drained)
			}
			var got []string
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					item, shutdown := q.Get()
					if shutdown {
						return
					}
					got = append(got, item)
					q.Done(item)
				}
			}()
			for _, ch := range []chan struct{}{done, drained} {
				select {
				case <-ch:
				case <-time.After(10 * time.Second):
					t.Fatal("worker or drain still running after 10s")
				}
			}
			if len(got) != 1 || got[0] != "due" {
				t.Fatalf("processed %q, want [due]: a due item was dropped, or one not due was kept", got)
			}
		})
	}
}
