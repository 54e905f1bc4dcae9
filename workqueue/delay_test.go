package workqueue_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/clock"
	"github.com/regentkv/regent/workqueue"
)

func TestAddAfterWaitsForTheDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue[string]()
		defer q.ShutDown()
		q.AddAfter("a", 10*time.Second)
		if n := q.Len(); n != 0 {
			t.Fatalf("Len right after AddAfter = %d, want 0", n)
		}
		advance(10*time.Second - 1)
		if n := q.Len(); n != 0 {
			t.Fatalf("Len 1ns before due = %d, want 0", n)
		}
		advance(1)
		if n := q.Len(); n != 1 {
			t.Fatalf("Len when due = %d, want 1", n)
		}
		if got := mustGet(t, q); got != "a" {
			t.Fatalf("Get = %q, want a", got)
		}
		q.Done("a")
		// That no timer stays armed once nothing waits is checked in
		// TestWithClockDrivesDelays: a bubble cannot count timers, and an
		// idle timer run has no effect to observe.
	})
}

func TestAddAfterNonPositiveIsImmediate(t *testing.T) {
	q := newQueue[string]()
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
			synctest.Test(t, func(t *testing.T) {
				q := newQueue[string]()
				defer q.ShutDown()
				q.AddAfter("a", tc.first)
				q.AddAfter("a", tc.again)
				advance(tc.due - 1)
				if n := q.Len(); n != 0 {
					t.Fatalf("Len before %v = %d, want 0", tc.due, n)
				}
				advance(1)
				if n := q.Len(); n != 1 {
					t.Fatalf("Len at %v = %d, want 1", tc.due, n)
				}
				q.Done(mustGet(t, q))
				advance(time.Minute)
				if n := q.Len(); n != 0 {
					t.Fatalf("Len after the later time = %d, want 0: one AddAfter item runs once", n)
				}
			})
		})
	}
}

func TestAddAfterReleasesInDueOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue[string]()
		defer q.ShutDown()
		q.AddAfter("c", 3*time.Second)
		q.AddAfter("a", 1*time.Second)
		q.AddAfter("b", 2*time.Second)
		q.AddAfter("c", 500*time.Millisecond) // moves c to the front
		advance(5 * time.Second)
		for _, want := range []string{"c", "a", "b"} {
			if got := mustGet(t, q); got != want {
				t.Fatalf("Get = %q, want %q", got, want)
			}
			q.Done(want)
		}
	})
}

func TestAddAfterDuplicateOfPendingItemCollapses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue[string]()
		defer q.ShutDown()
		q.Add("a")
		q.AddAfter("a", time.Second)
		advance(time.Second)
		if n := q.Len(); n != 1 {
			t.Fatalf("Len = %d, want 1: a was still pending when its delay ended", n)
		}
	})
}

// One timer for the whole queue, however many items wait, and no goroutine.
// A bubble cannot count timers (TestWithClockDrivesDelays counts them on a
// fake clock), but a timer per item would show as allocations: each item
// here is due before those already waiting, so every AddAfter moves the
// timer, and arming a new one allocates it where resetting the queue's one
// timer allocates nothing.
func TestAddAfterUsesOneTimerAndNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue[int]()
		defer q.ShutDown()
		before := runtime.NumGoroutine()
		const n = 10000
		i := 0
		// AllocsPerRun makes one uncounted call first, which creates the
		// timer; the heap and the map grow by doubling, far below one
		// allocation per call.
		allocs := testing.AllocsPerRun(n-1, func() {
			q.AddAfter(i, time.Duration(n-i)*time.Millisecond)
			i++
		})
		if allocs != 0 {
			t.Fatalf("AddAfter allocates %v times per waiting item, want 0: a timer per item?", allocs)
		}
		if after := runtime.NumGoroutine(); after > before {
			t.Fatalf("goroutines grew from %d to %d", before, after)
		}
		// The timer is due for the earliest item, 1ms away.
		advance(time.Millisecond - 1)
		if got := q.Len(); got != 0 {
			t.Fatalf("Len 1ns before the earliest item is due = %d, want 0", got)
		}
		advance(1)
		if got := q.Len(); got != 1 {
			t.Fatalf("Len when the earliest item is due = %d, want 1: the timer must be due for it", got)
		}
		advance(n*time.Millisecond - time.Millisecond)
		if got := q.Len(); got != n {
			t.Fatalf("Len = %d, want %d", got, n)
		}
		for i := n - 1; i >= 0; i-- { // latest added was due first
			if got := mustGet(t, q); got != i {
				t.Fatalf("Get = %d, want %d", got, i)
			}
			q.Done(i)
		}
	})
}

// Lowering the due time of the same items over and over leaves outdated
// entries behind; they must neither resurface as duplicates nor pile up.
func TestAddAfterRepeatedLoweringStaysCorrect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue[int]()
		defer q.ShutDown()
		for round := 100; round > 0; round-- {
			for i := range 10 {
				q.AddAfter(i, time.Duration(round)*time.Second)
			}
		}
		advance(time.Second)
		if n := q.Len(); n != 10 {
			t.Fatalf("Len = %d, want 10", n)
		}
		for range 10 {
			q.Done(mustGet(t, q))
		}
		advance(200 * time.Second)
		if n := q.Len(); n != 0 {
			t.Fatalf("Len after the outdated times = %d, want 0", n)
		}
	})
}

func TestShutDownDropsDelayedItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue[string]()
		q.AddAfter("a", time.Second)
		// ShutDown returns only once no run of the queue's timer is
		// pending: had it left the timer armed, it would wait the second
		// until the timer fires. (TestWithClockDrivesDelays also counts
		// the timers armed after ShutDown on a fake clock.)
		start := time.Now()
		q.ShutDown()
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("ShutDown waited %v for the dropped item's timer, want 0: the timer is still armed", waited)
		}
		q.AddAfter("b", time.Second) // ignored
		advance(time.Hour)
		if _, shutdown := q.Get(); !shutdown {
			t.Fatal("Get: want shutdown; delayed items are dropped, not waited for")
		}
	})
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
// callback running after it returns (goleak checks the real-clock case; a
// bubble fails on a goroutine left blocked, and waits for the others).
func TestShutDownRacesTimerCallbacks(t *testing.T) {
	t.Run("synctest", func(t *testing.T) {
		for round := range 50 {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue[int]()
				for i := range 20 {
					q.AddAfter(i, time.Duration(i+1)*time.Millisecond)
				}
				// Wake when item k-1 falls due (before the first, for k = 0,
				// after the last, for k = 20): ShutDown then runs while that
				// item's timer callback does, on another goroutine.
				k := round % 21
				time.Sleep(time.Duration(k) * time.Millisecond)
				q.ShutDown()
				// Whichever took the lock first, exactly the items due by
				// then are handed out, in due order.
				for want := range k {
					if got, shutdown := q.Get(); shutdown || got != want {
						t.Fatalf("shut down at %dms: Get = %d, %v; want %d, false", k, got, shutdown, want)
					}
					q.Done(want)
				}
				if got, shutdown := q.Get(); !shutdown {
					t.Fatalf("shut down at %dms: Get = %d, want shutdown", k, got)
				}
			})
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

// Only Get itself can release items here: lateClock's timers never fire.
func TestGetTakesDueItemsWithoutTheTimer(t *testing.T) {
	clock := &lateClock{now: epoch}
	q := workqueue.New(workqueue.Config[string]{Clock: clock})
	defer q.ShutDown()
	q.AddAfter("b", 2*time.Second)
	q.AddAfter("a", time.Second)
	q.AddAfter("later", time.Hour)
	clock.Step(2 * time.Second)
	for _, want := range []string{"a", "b"} {
		if got := mustGet(t, q); got != want {
			t.Fatalf("Get = %q, want %q", got, want)
		}
		q.Done(want)
	}
}

// A delayed item whose time has come by the queue's clock is due, whether
// or not its timer has fired yet: shutting down must hand it out, and drop
// only what is not due.
func TestShutDownKeepsDueDelayedItems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drain bool
	}{{"ShutDown", false}, {"ShutDownWithDrain", true}} {
		t.Run(tc.name, func(t *testing.T) {
			// In a bubble for synctest.Wait: the queue's time is still
			// lateClock's, so that its timer stays late.
			synctest.Test(t, func(t *testing.T) {
				clock := &lateClock{now: epoch}
				q := workqueue.New(workqueue.Config[string]{Clock: clock})
				q.AddAfter("due", time.Millisecond)
				q.AddAfter("later", time.Hour)
				clock.Step(2 * time.Millisecond) // "due" is due; its timer has not fired
				// The shutdown starts before any worker runs, so no Get can
				// move the item to the FIFO first.
				drained := make(chan struct{})
				if tc.drain {
					go func() { defer close(drained); q.ShutDownWithDrain() }()
					synctest.Wait() // the drain has started and waits for the worker
					if !q.ShuttingDown() {
						t.Fatal("ShutDownWithDrain blocked without shutting the queue down")
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
		})
	}
}

// TestGetWaitsForANearItemInABubble: a worker waiting for an item due
// within the spin window yields a bounded number of times, then parks, so
// that a testing/synctest bubble (whose clock only moves when every
// goroutine is durably blocked) reaches the due time instead of spinning
// for ever. Both Get and GetCtx.
func TestGetWaitsForANearItemInABubble(t *testing.T) {
	for _, name := range []string{"Get", "GetCtx"} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := workqueue.New(workqueue.Config[string]{})
				defer q.ShutDown()
				start := time.Now()
				q.AddAfter("a", 10*time.Microsecond)
				var item string
				if name == "Get" {
					item, _ = q.Get()
				} else {
					var err error
					if item, err = q.GetCtx(t.Context()); err != nil {
						t.Fatalf("GetCtx: %v", err)
					}
				}
				if item != "a" {
					t.Fatalf("got %q, want a", item)
				}
				if d := time.Since(start); d != 10*time.Microsecond {
					t.Errorf("handed out after %v of bubble time, want exactly 10µs", d)
				}
				q.Done(item)
			})
		})
	}
}
