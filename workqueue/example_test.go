package workqueue_test

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/regentkv/regent/clock/clocktest"
	"github.com/regentkv/regent/workqueue"
)

// A reconciler pool: adds of one key collapse, and ShutDownWithDrain waits
// for every queued key to be processed.
func Example() {
	q := workqueue.New(workqueue.Config[string]{})
	for _, key := range []string{"default/web", "default/db", "default/web", "default/web"} {
		q.Add(key)
	}

	var mu sync.Mutex
	processed := map[string]int{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				key, shutdown := q.Get()
				if shutdown {
					return
				}
				mu.Lock()
				processed[key]++
				mu.Unlock()
				q.Done(key)
			}
		})
	}
	q.ShutDownWithDrain()
	wg.Wait()
	fmt.Println(processed)
	// Output: map[default/db:1 default/web:1]
}

// Retries with per-item exponential backoff, on a fake clock so the example
// is exact.
func Example_rateLimited() {
	clock := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	limiter, err := workqueue.Exponential[string](time.Second, time.Minute, workqueue.WithClock(clock))
	if err != nil {
		panic(err)
	}
	q := workqueue.New(workqueue.Config[string]{Clock: clock, RateLimiter: limiter})
	defer q.ShutDown()

	q.Add("default/web")
	for attempt := 1; attempt <= 3; attempt++ {
		for q.Len() == 0 {
			clock.Step(time.Second) // time passes only when the test says so
		}
		key, _ := q.Get()
		fmt.Printf("attempt %d at +%v\n", attempt, clock.Now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
		q.AddRateLimited(key) // it failed: retry after 1s, 2s, 4s...
		q.Done(key)
	}
	fmt.Println("requeues:", q.NumRequeues("default/web"))
	// Output:
	// attempt 1 at +0s
	// attempt 2 at +1s
	// attempt 3 at +3s
	// requeues: 3
}

// Rate limiters return durations; the queue does the waiting. MaxOf combines
// a per-item backoff with an overall budget, like DefaultRateLimiter.
func ExampleMaxOf() {
	clock := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	perItem, _ := workqueue.Exponential[string](10*time.Millisecond, time.Second, workqueue.WithClock(clock))
	overall, _ := workqueue.Bucket[string](1, 2, workqueue.WithClock(clock)) // 1 retry/s, burst 2
	limiter, err := workqueue.MaxOf[string](perItem, overall)
	if err != nil {
		panic(err)
	}
	for _, key := range []string{"a", "a", "b", "c"} {
		fmt.Println(key, limiter.When(key))
	}

	_, err = workqueue.Exponential[string](time.Second, time.Millisecond)
	fmt.Println(errors.Is(err, workqueue.ErrInvalidLimiter))
	// Output:
	// a 10ms
	// a 20ms
	// b 1s
	// c 2s
	// true
}
