//go:build chaos

package chaos

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regentkv/regent/workqueue"
)

// Workqueue soak: producers add fresh items (some twice, from two
// producers at once), now, after a delay or rate-limited; workers process
// them and, now and then, add the item they hold again, which obliges the
// queue to hand it out once more after Done. At the end the queue is
// drained. Checked: every item added was processed; every re-add made
// during processing was followed by another processing; no item was held
// by two workers at once; the drain completes.

const (
	soakOps       = 1_000_000
	soakRounds    = 5 // each with a queue of its own and a drain at its end
	soakProducers = 8
	soakWorkers   = 8
)

func TestWorkqueueSoak(t *testing.T) {
	forEachSeed(t, func(t *testing.T, _ uint64, rng *rand.Rand) {
		for round := range soakRounds {
			soakRound(t, round, soakOps/soakRounds, rng)
		}
	})
}

// soakItem is the state the test keeps per item.
type soakItem struct {
	held      atomic.Int32 // workers holding it now: 0 or 1
	processed atomic.Int32 // times handed out
	owed      atomic.Int32 // re-adds during processing not yet followed by a processing
	owedDue   atomic.Int64 // when the last such re-add was due (ns since the epoch of the run)
	addDue    atomic.Int64 // when the producer's add was due (ns since the epoch), 0 before any
}

func soakRound(t *testing.T, round, total int, rng *rand.Rand) {
	limiter, err := workqueue.Exponential[int](time.Microsecond, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	q := workqueue.New(workqueue.Config[int]{Name: "soak", RateLimiter: limiter})
	epoch := time.Now()
	since := func() int64 { return int64(time.Since(epoch)) }
	var ops atomic.Int64
	var next atomic.Int64
	items := make([]soakItem, total) // indexed by item; more than ever used
	var violations atomic.Int64
	fail := func(format string, args ...any) {
		if violations.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}

	var workers sync.WaitGroup
	for w := range soakWorkers {
		wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
		workers.Go(func() {
			for {
				item, shutdown := q.Get()
				if shutdown {
					return
				}
				ops.Add(1)
				it := &items[item]
				if n := it.held.Add(1); n != 1 {
					fail("item %d held by %d workers at once", item, n)
				}
				it.processed.Add(1)
				it.owed.Store(0)
				if wrng.IntN(20) == 0 {
					// A re-add while held: the queue must hand it out
					// again after Done, once it is due, unless the queue
					// was shutting down by then (a closing queue takes no
					// new work, as client-go's).
					var d time.Duration
					switch wrng.IntN(3) {
					case 0:
						q.Add(item)
					case 1:
						d = time.Duration(wrng.IntN(1000)) * time.Microsecond
						q.AddAfter(item, d)
					default:
						d = time.Millisecond // the limiter's most
						q.AddRateLimited(item)
					}
					due := since() + int64(d)
					if !q.ShuttingDown() {
						it.owed.Store(1) // re-adds of one holding collapse
						it.owedDue.Store(due)
					}
					ops.Add(1)
				} else if wrng.IntN(4) == 0 {
					q.Forget(item)
					ops.Add(1)
				}
				it.held.Add(-1)
				q.Done(item)
				ops.Add(1)
			}
		})
	}

	var producers sync.WaitGroup
	for p := range soakProducers {
		prng := rand.New(rand.NewPCG(rng.Uint64(), uint64(100+p)))
		producers.Go(func() {
			for ops.Load() < int64(total) {
				item := int(next.Add(1))
				if item >= len(items) {
					return
				}
				// Due times are taken after the call returns: no earlier
				// than the queue's own (which a drain may drop if later).
				var d time.Duration
				switch r := prng.IntN(10); {
				case r < 5:
					q.Add(item)
				case r < 8:
					d = time.Duration(prng.IntN(2000)) * time.Microsecond
					q.AddAfter(item, d)
				default:
					d = time.Millisecond // the limiter's most
					q.AddRateLimited(item)
				}
				due := since() + int64(d)
				items[item].addDue.Store(due)
				ops.Add(1)
				if prng.IntN(10) == 0 {
					q.Add(item) // a second add of the same item: collapses, or re-queues
					items[item].addDue.Store(since())
					ops.Add(1)
				}
			}
		})
	}
	producers.Wait()
	// The drain begins at once, while delayed items fall due around it:
	// those due by then must be processed, whether their timer fired or
	// not; those not due yet are dropped by design.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	drainAt := since()
	if err := q.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	drained := time.Since(start)
	workers.Wait()

	used := int(min(next.Load(), int64(len(items))))
	lost, owed := 0, 0
	for i := 1; i < used; i++ {
		it := &items[i]
		if it.processed.Load() == 0 && it.addDue.Load() < drainAt {
			lost++
			if lost <= 5 {
				t.Errorf("item %d was added and never processed", i)
			}
		}
		// A re-add not yet due when the drain began is dropped by design.
		if it.owed.Load() > 0 && it.owedDue.Load() < drainAt {
			owed++
			if owed <= 5 {
				t.Errorf("item %d was added again while held and not processed after", i)
			}
		}
	}
	t.Logf("round %d: %d operations on %d items by %d producers and %d workers; drain took %v; %d lost, %d re-adds unserved",
		round, ops.Load(), used-1, soakProducers, soakWorkers, drained.Round(time.Millisecond), lost, owed)
}
