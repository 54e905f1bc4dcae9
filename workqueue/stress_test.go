package workqueue_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regentkv/regent/workqueue"
)

// tracker checks the queue's promises from the outside: a key is never
// processed by two workers at once, and every add is followed by a
// processing that started after it.
type tracker struct {
	inFlight  []atomic.Int32
	added     []atomic.Int64 // generation of the last add, bumped before Add
	processed []atomic.Int64 // highest generation a processing started after
	runs      atomic.Int64
	adds      atomic.Int64

	// Workers re-add keys while reAdd is set. Adds after shutdown are
	// ignored by design, so the test clears it, under mu, before draining.
	mu    sync.RWMutex
	reAdd bool
}

func (tr *tracker) stopReAdding() {
	tr.mu.Lock()
	tr.reAdd = false
	tr.mu.Unlock()
}

// add bumps key's generation, then adds it (after delay, if positive).
func (tr *tracker) add(q *workqueue.Queue[int], key int, delay time.Duration) {
	tr.adds.Add(1)
	tr.added[key].Add(1)
	q.AddAfter(key, delay)
}

func newTracker(keys int) *tracker {
	return &tracker{
		inFlight:  make([]atomic.Int32, keys),
		added:     make([]atomic.Int64, keys),
		processed: make([]atomic.Int64, keys),
		reAdd:     true,
	}
}

func (tr *tracker) work(t *testing.T, q *workqueue.Queue[int], wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		key, shutdown := q.Get()
		if shutdown {
			return
		}
		if !tr.inFlight[key].CompareAndSwap(0, 1) {
			t.Errorf("key %d handed to two workers at once", key)
		}
		seen := tr.added[key].Load()
		if tr.runs.Add(1)%10 == 0 {
			// An add during processing: the key must run again after Done.
			tr.mu.RLock()
			if tr.reAdd {
				tr.add(q, key, 0)
			}
			tr.mu.RUnlock()
		}
		for {
			old := tr.processed[key].Load()
			if seen <= old || tr.processed[key].CompareAndSwap(old, seen) {
				break
			}
		}
		tr.inFlight[key].Store(0)
		q.Done(key)
	}
}

func (tr *tracker) unprocessed() int {
	n := 0
	for k := range tr.added {
		if tr.processed[k].Load() < tr.added[k].Load() {
			n++
		}
	}
	return n
}

func TestStress(t *testing.T) {
	const (
		keys      = 500
		producers = 8
		workers   = 8
		perProd   = 20000
	)
	for _, mode := range []string{"Add", "AddAfter"} {
		t.Run(mode, func(t *testing.T) {
			q := newQueue[int]()
			tr := newTracker(keys)
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go tr.work(t, q, &wg)
			}
			var prod sync.WaitGroup
			for p := range producers {
				prod.Add(1)
				go func() {
					defer prod.Done()
					r := rand.New(rand.NewPCG(uint64(p), 1))
					for range perProd {
						var delay time.Duration
						if mode == "AddAfter" && r.IntN(2) == 0 {
							delay = time.Duration(1+r.IntN(200)) * time.Microsecond
						}
						tr.add(q, r.IntN(keys), delay)
					}
				}()
			}
			prod.Wait()
			tr.stopReAdding()
			if mode == "AddAfter" {
				// Delayed items are dropped by a drain, so first wait for
				// every one to have run.
				eventually(t, 15*time.Second, func() bool { return tr.unprocessed() == 0 }, "delayed items to run")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := q.Drain(ctx); err != nil {
				t.Fatalf("Drain: %v", err)
			}
			wg.Wait()
			if n := tr.unprocessed(); n != 0 {
				t.Fatalf("%d keys were added after their last processing started", n)
			}
			// Each run consumes at least one add: more runs than adds would
			// mean an item was handed out twice for one add.
			if runs, adds := tr.runs.Load(), tr.adds.Load(); runs > adds || runs < keys/2 {
				t.Fatalf("runs = %d for %d adds", runs, adds)
			}
			t.Logf("%d adds collapsed into %d runs", tr.adds.Load(), tr.runs.Load())
		})
	}
}

// A burst must wake as many sleeping workers as it has items: if wake-ups
// were rationed too hard, the workers below could never all hold an item at
// the same time and the test would time out.
func TestBurstWakesEnoughWorkers(t *testing.T) {
	const workers = 8
	q := newQueue[int]()
	defer q.ShutDown()
	var holding sync.WaitGroup
	holding.Add(workers)
	allHeld := make(chan struct{})
	go func() { holding.Wait(); close(allHeld) }()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			item, err := q.GetCtx(context.Background())
			if err != nil {
				t.Errorf("GetCtx: %v", err)
				holding.Done()
				return
			}
			holding.Done()
			<-allHeld // hold the item until every worker has one
			q.Done(item)
		})
	}
	for i := range workers {
		q.Add(i)
	}
	recv(t, allHeld, "all workers to hold an item at once")
	wg.Wait()
}
