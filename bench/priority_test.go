package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	crpq "sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"

	"github.com/regentkv/regent/controller"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
	"github.com/regentkv/regent/workqueue"
)

// The failover case: what a new leader's term starts with, and the work.
const (
	fillKeys        = 100_000
	fillWorkers     = 8
	reconcileCost   = time.Millisecond
	liveAfterFilled = 1000 // reconciles of the fill before the live change
	backlog         = 10_000
)

// BenchmarkPriority measures the priority path of the work queue.
//
//   - queue/<impl>: one op adds a live item (default priority) and a
//     low-priority one to a queue holding a backlog of low-priority items,
//     then takes two (the live one must come first) and finishes them:
//     regent's workqueue against controller-runtime's priority queue
//     (pkg/controller/priorityqueue, imported: v0.24.1, as v0.25 would
//     move this module's etcd to 3.7), ns/op.
//   - failover/<impl>: a new term with 100,000 cached keys, each reconcile
//     costing 1 ms of work, 8 workers. After the first 1,000 reconciles of
//     the fill a live change (a new key) is made; ms/live is from its
//     write to the end of its reconcile. regent is controller.Controller;
//     controller-runtime is its priority queue fed the way its controller
//     feeds it (initial adds at low priority); fifo is a queue without
//     priorities, as client-go's and regent's before priorities: the
//     live change waits behind the whole fill (about 100,000 x 1 ms / 8).
//
// The queue figures want the default benchtime, the failover ones a few
// terms:
//
//	go test -run '^$' -bench 'BenchmarkPriority/queue' -count 6
//	go test -run '^$' -bench 'BenchmarkPriority/failover' -benchtime 3x
func BenchmarkPriority(b *testing.B) {
	b.Run("queue", func(b *testing.B) {
		b.Run("regent", func(b *testing.B) {
			q := workqueue.New(workqueue.Config[int]{})
			defer q.ShutDown()
			benchPriorityQueue(b, regentPrioQueue{q})
		})
		b.Run("controller-runtime", func(b *testing.B) {
			q := crpq.New[int]("bench")
			defer q.ShutDown()
			benchPriorityQueue(b, crPrioQueue[int]{q})
		})
	})
	b.Run("failover", func(b *testing.B) {
		mem := memory.NewBackend()
		defer mem.Close()
		s := mem.Client()
		defer func() { _ = s.Close() }()
		ctx := context.Background()
		fill(b, s, fillKeys)
		inf, err := informer.New(s, informer.Config[[]byte]{Prefix: "objs", Decode: func(_ string, v []byte) ([]byte, error) { return v, nil }})
		if err != nil {
			b.Fatal(err)
		}
		ictx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { _ = inf.Run(ictx) }()
		if err := inf.WaitForCacheSync(ctx); err != nil {
			b.Fatal(err)
		}
		b.Run("regent", func(b *testing.B) { benchFailoverFill(b, s, regentTerm(b, inf)) })
		b.Run("controller-runtime", func(b *testing.B) {
			benchFailoverFill(b, s, loopTerm(inf, func() prioQueue[string] { return crPrioQueue[string]{crpq.New[string]("bench")} }))
		})
		b.Run("fifo", func(b *testing.B) {
			benchFailoverFill(b, s, loopTerm(inf, func() prioQueue[string] {
				return fifoQueue{workqueue.New(workqueue.Config[string]{})}
			}))
		})
	})
}

// prioQueue is the part of a priority queue the benchmarks use.
type prioQueue[T comparable] interface {
	add(item T, prio int)
	get() (item T, prio int, shutdown bool)
	done(item T)
	shutDown()
}

type regentPrioQueue struct{ q *workqueue.Queue[int] }

func (r regentPrioQueue) add(item, prio int) {
	r.q.AddWithOpts(workqueue.AddOpts{Priority: prio}, item)
}
func (r regentPrioQueue) get() (int, int, bool) { return r.q.GetWithPriority() }
func (r regentPrioQueue) done(item int)         { r.q.Done(item) }
func (r regentPrioQueue) shutDown()             { r.q.ShutDown() }

type crPrioQueue[T comparable] struct{ q crpq.PriorityQueue[T] }

func (c crPrioQueue[T]) add(item T, prio int) {
	c.q.AddWithOpts(crpq.AddOpts{Priority: &prio}, item)
}
func (c crPrioQueue[T]) get() (T, int, bool) { return c.q.GetWithPriority() }
func (c crPrioQueue[T]) done(item T)         { c.q.Done(item) }
func (c crPrioQueue[T]) shutDown()           { c.q.ShutDown() }

// fifoQueue ignores priorities: the queue before them.
type fifoQueue struct{ q *workqueue.Queue[string] }

func (f fifoQueue) add(item string, _ int) { f.q.Add(item) }
func (f fifoQueue) get() (string, int, bool) {
	item, shutdown := f.q.Get()
	return item, 0, shutdown
}
func (f fifoQueue) done(item string) { f.q.Done(item) }
func (f fifoQueue) shutDown()        { f.q.ShutDown() }

func benchPriorityQueue(b *testing.B, q prioQueue[int]) {
	for i := range backlog {
		q.add(-1-i, workqueue.LowPriority)
	}
	next := -1 - backlog
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		q.add(i, 0)
		q.add(next, workqueue.LowPriority)
		next--
		live, _, _ := q.get()
		if live != i {
			b.Fatalf("got %d first, want the live item %d", live, i)
		}
		low, _, _ := q.get()
		q.done(live)
		q.done(low)
	}
}

// fill writes n keys of 100 bytes under objs/.
func fill(b *testing.B, s kv.Store, n int) {
	ctx := context.Background()
	value := make([]byte, 100)
	for i := range n {
		if err := s.Put(ctx, fmt.Sprintf("objs/%07d", i), value, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// term is one leadership term of a controller over the warm informer: it
// runs until ctx ends, calling reconciled with each key it finished.
type term func(ctx context.Context, reconciled func(key string)) error

// work is the reconcile's cost: a sleep, the shape of a call to something
// else.
func work() { time.Sleep(reconcileCost) }

// regentTerm is a term of regent's controller.
func regentTerm(b *testing.B, inf *informer.Informer[[]byte]) term {
	var hook atomic.Pointer[func(string)]
	c, err := controller.New(controller.Config[[]byte]{
		Name: "bench", Informer: inf, Workers: fillWorkers,
		Reconciler: controller.ReconcileFunc[[]byte](func(_ context.Context, req controller.Request[[]byte]) (controller.Result, error) {
			work()
			(*hook.Load())(req.Key)
			return controller.Result{}, nil
		}),
	})
	if err != nil {
		b.Fatal(err)
	}
	return func(ctx context.Context, reconciled func(string)) error {
		hook.Store(&reconciled)
		return c.Run(ctx)
	}
}

// loopTerm is a term of a minimal controller over a queue: initial adds at
// low priority (as controller-runtime's controller queues them), live
// changes at the default one, fillWorkers workers.
func loopTerm(inf *informer.Informer[[]byte], newQueue func() prioQueue[string]) term {
	return func(ctx context.Context, reconciled func(string)) error {
		q := newQueue()
		reg, err := inf.AddEventHandler(informer.Handler[[]byte]{
			OnAdd: func(key string, _ []byte, initial bool) {
				if initial {
					q.add(key, workqueue.LowPriority)
				} else {
					q.add(key, 0)
				}
			},
			OnUpdate: func(key string, _, _ []byte) { q.add(key, 0) },
			OnDelete: func(key string, _ []byte, _ bool) { q.add(key, 0) },
		})
		if err != nil {
			return err
		}
		defer reg.Remove()
		var wg sync.WaitGroup
		for range fillWorkers {
			wg.Go(func() {
				for {
					key, _, shutdown := q.get()
					if shutdown {
						return
					}
					if ctx.Err() == nil {
						work()
						reconciled(key)
					}
					q.done(key)
				}
			})
		}
		<-ctx.Done()
		q.shutDown()
		wg.Wait()
		return nil
	}
}

var liveSeq atomic.Int64

// benchFailoverFill starts a term b.N times; in each, once liveAfterFilled
// keys of the fill are reconciled, it writes a new key and times it to the
// end of its reconcile.
func benchFailoverFill(b *testing.B, s kv.Store, run term) {
	var samples []time.Duration
	for range b.N {
		live := fmt.Sprintf("objs/live-%d", liveSeq.Add(1))
		var filled atomic.Int64
		started, seen := make(chan struct{}), make(chan time.Time, 1)
		ctx, cancel := context.WithCancel(context.Background())
		ended := make(chan error, 1)
		go func() {
			ended <- run(ctx, func(key string) {
				if key == live {
					seen <- time.Now()
					return
				}
				if filled.Add(1) == liveAfterFilled {
					close(started)
				}
			})
		}()
		select {
		case <-started:
		case err := <-ended:
			b.Fatalf("term ended before the fill: %v", err)
		}
		t0 := time.Now()
		if err := s.Put(context.Background(), live, make([]byte, 100), nil); err != nil {
			b.Fatal(err)
		}
		limit := 2 * fillKeys * reconcileCost / fillWorkers
		select {
		case at := <-seen:
			samples = append(samples, at.Sub(t0))
		case <-time.After(limit):
			b.Fatalf("live change not reconciled within %v", limit)
		}
		b.ReportMetric(float64(filled.Load()), "fill-reconciles-before-live")
		cancel()
		if err := <-ended; err != nil {
			b.Fatal(err)
		}
		if err := s.Delete(context.Background(), live); err != nil {
			b.Fatal(err)
		}
	}
	report(b, samples, "live")
}
