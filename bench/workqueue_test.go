package bench

import (
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	kwq "k8s.io/client-go/util/workqueue"

	"github.com/regentkv/regent/workqueue"
)

// regent's Queue has client-go's method set, so both queues run through the
// same interface value here: identical call overhead, identical loops.
var _ kwq.TypedRateLimitingInterface[int] = (*workqueue.Queue[int])(nil)

// Each limiter pair is the controller default's shape (per-item exponential,
// max'ed with a shared token bucket) scaled down so the benchmark measures
// the queue, not the wait: a 1 ns base delay still takes the delayed path,
// and the bucket never runs dry.
const (
	benchBase   = time.Nanosecond
	benchMax    = time.Second
	benchQPS    = 1e9
	benchBurst  = 1 << 30
	benchDelay  = time.Microsecond
	benchWorker = 8
)

func newRegent(b *testing.B) kwq.TypedRateLimitingInterface[int] {
	exp, err := workqueue.Exponential[int](benchBase, benchMax)
	if err != nil {
		b.Fatal(err)
	}
	bucket, err := workqueue.Bucket[int](benchQPS, benchBurst)
	if err != nil {
		b.Fatal(err)
	}
	limiter, err := workqueue.MaxOf[int](exp, bucket)
	if err != nil {
		b.Fatal(err)
	}
	return workqueue.New(workqueue.Config[int]{RateLimiter: limiter})
}

func newClientGo(*testing.B) kwq.TypedRateLimitingInterface[int] {
	limiter := kwq.NewTypedMaxOfRateLimiter(
		kwq.NewTypedItemExponentialFailureRateLimiter[int](benchBase, benchMax),
		&kwq.TypedBucketRateLimiter[int]{Limiter: rate.NewLimiter(rate.Limit(benchQPS), benchBurst)},
	)
	return kwq.NewTypedRateLimitingQueue(limiter)
}

func BenchmarkQueue(b *testing.B) {
	impls := []struct {
		name string
		make func(*testing.B) kwq.TypedRateLimitingInterface[int]
	}{
		{"regent", newRegent},
		{"clientgo", newClientGo},
	}
	cases := []struct {
		name string
		run  func(*testing.B, kwq.TypedRateLimitingInterface[int])
	}{
		{"AddGetDone", benchAddGetDone},
		{"Parallel8", benchParallel8},
		{"AddAfter", benchAddAfter},
		{"AddRateLimited", benchAddRateLimited},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for _, impl := range impls {
				b.Run(impl.name, func(b *testing.B) {
					q := impl.make(b)
					defer q.ShutDown()
					b.ReportAllocs()
					c.run(b, q)
				})
			}
		})
	}
}

// One goroutine: add a new item, take it, finish it.
func benchAddGetDone(b *testing.B, q kwq.TypedRateLimitingInterface[int]) {
	for i := 0; b.Loop(); i++ {
		q.Add(i)
		item, _ := q.Get()
		q.Done(item)
	}
}

// One producer, eight workers: ns/op is per item, drain included.
func benchParallel8(b *testing.B, q kwq.TypedRateLimitingInterface[int]) {
	var wg sync.WaitGroup
	for range benchWorker {
		wg.Go(func() {
			for {
				item, shutdown := q.Get()
				if shutdown {
					return
				}
				q.Done(item)
			}
		})
	}
	for i := 0; b.Loop(); i++ {
		q.Add(i)
	}
	q.ShutDownWithDrain()
	wg.Wait()
}

// A 1 µs delay, then take and finish the item: timer-bound.
func benchAddAfter(b *testing.B, q kwq.TypedRateLimitingInterface[int]) {
	for i := 0; b.Loop(); i++ {
		q.AddAfter(i, benchDelay)
		item, _ := q.Get()
		q.Done(item)
	}
}

// The retry path: rate-limited add, take, forget, finish.
func benchAddRateLimited(b *testing.B, q kwq.TypedRateLimitingInterface[int]) {
	for i := 0; b.Loop(); i++ {
		q.AddRateLimited(i)
		item, _ := q.Get()
		q.Forget(item)
		q.Done(item)
	}
}
