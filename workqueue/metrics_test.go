package workqueue_test

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/workqueue"
)

type recorder struct {
	mu             sync.Mutex
	adds, retries  int
	queued, worked []time.Duration
	inFlight       func() workqueue.InFlight
}

func (r *recorder) Add()   { r.mu.Lock(); r.adds++; r.mu.Unlock() }
func (r *recorder) Retry() { r.mu.Lock(); r.retries++; r.mu.Unlock() }
func (r *recorder) Get(d time.Duration) {
	r.mu.Lock()
	r.queued = append(r.queued, d)
	r.mu.Unlock()
}
func (r *recorder) Done(d time.Duration) {
	r.mu.Lock()
	r.worked = append(r.worked, d)
	r.mu.Unlock()
}
func (r *recorder) BindInFlight(f func() workqueue.InFlight) { r.inFlight = f }

func TestMetricsHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		limiter, _ := workqueue.Exponential[string](time.Second, time.Minute)
		q := workqueue.New(workqueue.Config[string]{Metrics: rec, RateLimiter: limiter})
		defer q.ShutDown()
		if rec.inFlight == nil {
			t.Fatal("New did not bind InFlight to a Metrics that asks for it")
		}

		q.Add("a")
		q.Add("a") // duplicate: not an add
		q.Add("b")
		time.Sleep(3 * time.Second)
		a := mustGet(t, q) // queued 3s
		time.Sleep(2 * time.Second)
		b := mustGet(t, q) // queued 5s
		time.Sleep(time.Second)
		if got, want := rec.inFlight(), (workqueue.InFlight{Processing: 2, Unfinished: 4 * time.Second, Longest: 3 * time.Second}); got != want {
			t.Fatalf("InFlight = %+v, want %+v", got, want)
		}
		q.Add("a") // during processing: counts, and re-queues on Done
		q.Done(a)  // worked 3s
		q.Done(b)  // worked 1s
		time.Sleep(time.Second)
		q.Done(mustGet(t, q)) // a again: queued 1s (since Done), worked 0
		q.AddRateLimited("c")
		advance(time.Second)  // c's timer fires
		q.Done(mustGet(t, q)) // c: runnable for 0s

		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.adds != 4 || rec.retries != 1 {
			t.Fatalf("adds = %d, retries = %d; want 4, 1", rec.adds, rec.retries)
		}
		wantQueued := []time.Duration{3 * time.Second, 5 * time.Second, time.Second, 0}
		wantWorked := []time.Duration{3 * time.Second, time.Second, 0, 0}
		if !equalDurations(rec.queued, wantQueued) {
			t.Fatalf("queue latencies = %v, want %v", rec.queued, wantQueued)
		}
		if !equalDurations(rec.worked, wantWorked) {
			t.Fatalf("work durations = %v, want %v", rec.worked, wantWorked)
		}
		if got := q.InFlight(); got != (workqueue.InFlight{}) {
			t.Fatalf("InFlight when idle = %+v, want zero", got)
		}
	})
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestInFlightWithoutMetricsCountsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue[string]()
		defer q.ShutDown()
		q.Add("a")
		mustGet(t, q)
		time.Sleep(time.Second)
		if got, want := q.InFlight(), (workqueue.InFlight{Processing: 1}); got != want {
			t.Fatalf("InFlight = %+v, want %+v (no durations without metrics)", got, want)
		}
		q.Done("a")
	})
}
