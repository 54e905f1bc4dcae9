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

// Retries with per-item exponential backoff: a key whose reconcile failed
// goes back with AddRateLimited, after a delay that doubles at each failure,
// until Forget resets it. The queue does the waiting; the delays are the
// limiter's When.
func Example_rateLimited() {
	// 1ms, 2ms, 4ms... up to 1s, short enough for the example to wait
	// them out; DefaultRateLimiter starts at 5ms.
	limiter, err := workqueue.Exponential[string](time.Millisecond, time.Second)
	if err != nil {
		panic(err)
	}
	q := workqueue.New(workqueue.Config[string]{RateLimiter: limiter})
	defer q.ShutDown()

	q.Add("default/web")
	for attempt := 1; attempt <= 3; attempt++ {
		key, _ := q.Get() // blocks until the key's backoff has passed
		if attempt < 3 {
			q.AddRateLimited(key) // the reconcile failed: retry later
			fmt.Printf("attempt %d failed, requeues: %d\n", attempt, q.NumRequeues(key))
		} else {
			q.Forget(key) // it succeeded: the next failure starts at 1ms again
			fmt.Printf("attempt %d succeeded, requeues: %d\n", attempt, q.NumRequeues(key))
		}
		q.Done(key)
	}

	var delays []time.Duration
	for range 4 {
		delays = append(delays, limiter.When("default/db"))
	}
	fmt.Println("delays of successive failures:", delays)
	// Output:
	// attempt 1 failed, requeues: 1
	// attempt 2 failed, requeues: 2
	// attempt 3 succeeded, requeues: 0
	// delays of successive failures: [1ms 2ms 4ms 8ms]
}

// Rate limiters return durations; the queue does the waiting. MaxOf combines
// a per-item backoff with an overall budget, like DefaultRateLimiter.
func ExampleMaxOf() {
	// The bucket refills as time passes, so its delays depend on the
	// microseconds between calls: a fake clock, passed WithClock, holds
	// time still to print them exactly. Production code omits it.
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
