package workqueue_test

import (
	"testing"
	"time"

	"github.com/regentkv/regent/clock/clocktest"
	"github.com/regentkv/regent/workqueue"
)

// Every other test of the package runs on the default clock, in a
// testing/synctest bubble where needed. Config.Clock and WithClock stay for
// the tests a bubble cannot hold (a controller against a real server): this
// one pins that a clocktest fake passed through them drives the limiters'
// state and the queue's delays, with the queue's timer armed on the fake.
// Counting the fake's timers also checks what a bubble cannot see: one
// timer however many items wait, due for the earliest, and none once
// nothing waits or after ShutDown.
func TestWithClockDrivesDelays(t *testing.T) {
	fake := clocktest.New(epoch)

	// Limiters built WithClock: expiry and refills follow the fake.
	exp, err := workqueue.Exponential[int](time.Millisecond, time.Minute, workqueue.WithClock(fake))
	if err != nil {
		t.Fatal(err)
	}
	exp.When(1)
	fake.Step(2 * time.Minute) // the TTL: twice the longest delay
	if got := exp.Tracked(); got != 1 {
		t.Fatalf("Tracked at exactly the TTL = %d, want 1", got)
	}
	fake.Step(1)
	if got := exp.Tracked(); got != 0 {
		t.Fatalf("Tracked after the TTL = %d, want 0: expiry must follow the fake", got)
	}
	bucket, err := workqueue.Bucket[int](10, 1, workqueue.WithClock(fake))
	if err != nil {
		t.Fatal(err)
	}
	if got := []time.Duration{bucket.When(1), bucket.When(2)}; got[0] != 0 || got[1] != 100*time.Millisecond {
		t.Fatalf("bucket delays = %v, want [0s 100ms]", got)
	}
	fake.Step(200 * time.Millisecond)
	if d := bucket.When(3); d != 0 {
		t.Fatalf("When after the fake refilled the bucket = %v, want 0", d)
	}

	// A queue on the fake, with the default rate limiter built on it.
	q := workqueue.New(workqueue.Config[int]{Clock: fake})
	defer q.ShutDown()
	start := fake.Now()
	const n = 10000
	for i := range n { // each due before those already waiting
		q.AddAfter(i, time.Duration(n-i)*time.Millisecond)
	}
	if got := fake.Armed(); got != 1 {
		t.Fatalf("armed timers with %d items waiting = %d, want 1", n, got)
	}
	if next, ok := fake.NextDue(); !ok || !next.Equal(start.Add(time.Millisecond)) {
		t.Fatalf("timer due at %v, %v; want %v (the earliest item)", next, ok, start.Add(time.Millisecond))
	}
	fake.Step(time.Millisecond - 1)
	if got := q.Len(); got != 0 {
		t.Fatalf("Len 1ns before the earliest item is due = %d, want 0", got)
	}
	fake.Step(1)
	if got := q.Len(); got != 1 {
		t.Fatalf("Len when the earliest item is due = %d, want 1", got)
	}
	fake.Step(n*time.Millisecond - time.Millisecond)
	if got := q.Len(); got != n {
		t.Fatalf("Len after the last item is due = %d, want %d", got, n)
	}
	for i := n - 1; i >= 0; i-- {
		if got := mustGet(t, q); got != i {
			t.Fatalf("Get = %d, want %d", got, i)
		}
		q.Done(i)
	}
	if got := fake.Armed(); got != 0 {
		t.Fatalf("armed timers with nothing waiting = %d, want 0", got)
	}

	// The default limiter's first delay, 5ms, elapses on the fake.
	q.AddRateLimited(-1)
	fake.Step(5*time.Millisecond - 1)
	if got := q.Len(); got != 0 {
		t.Fatalf("Len 1ns before the backoff ends = %d, want 0", got)
	}
	fake.Step(1)
	if got := q.Len(); got != 1 {
		t.Fatalf("Len when the backoff ends = %d, want 1", got)
	}
	q.Done(mustGet(t, q))

	q.AddAfter(-2, time.Hour)
	if got := fake.Armed(); got != 1 {
		t.Fatalf("armed timers with one item waiting = %d, want 1", got)
	}
	q.ShutDown()
	if got := fake.Armed(); got != 0 {
		t.Fatalf("armed timers after ShutDown = %d, want 0", got)
	}
}
