// Package workqueue is the typed work queue that regent's reconcilers pull
// keys from: de-duplicating, delaying and rate-limited, with the method set
// of client-go's TypedRateLimitingInterface (a *Queue[T] satisfies it) and
// the guarantees below, each pinned by a test.
//
//	q := workqueue.New(workqueue.Config[string]{})
//	defer q.ShutDown()
//	q.Add("ns/name")
//	for {
//		key, shutdown := q.Get()
//		if shutdown {
//			return
//		}
//		if err := reconcile(key); err != nil {
//			q.AddRateLimited(key) // retry later, with backoff
//		} else {
//			q.Forget(key) // reset the backoff
//		}
//		q.Done(key)
//	}
//
// # Guarantees
//
//   - Never in two workers at once: an item handed out by Get is not handed
//     out again until Done.
//   - Stingy: any number of Adds of an item before a worker takes it collapse
//     into one processing.
//   - Not lost: an Add while the item is being processed queues it again,
//     and it is handed out after Done.
//   - Fair: distinct runnable items are handed out in the order they became
//     runnable (first Add, Done of a re-added item, or end of a delay),
//     within one priority.
//   - Prioritised: AddWithOpts takes a priority (Add, AddAfter and
//     AddRateLimited use 0); Get hands out the highest priority's items
//     first. An item pending at one priority and added at a higher one is
//     raised (to the back of that priority's FIFO), never lowered; one
//     added while processing, or while delayed, keeps the highest priority
//     it was added at. Every guarantee above holds across priorities. A
//     queue used at one priority pays for no other (one FIFO, no lookups);
//     a raised item leaves a slot behind that Get skips. Up to 255
//     distinct priorities get a FIFO each; beyond, a new priority shares
//     the nearest one's. The controller package queues a new term's first
//     pass over the cache and resyncs at LowPriority.
//   - AddAfter keeps the earliest due time when an item is added again.
//     Delays cost no goroutine per item: one heap and one timer per queue,
//     and no goroutine at all while nothing waits. A worker asking after the
//     due time gets the item without waiting for the timer.
//   - Drain (and ShutDownWithDrain) returns only once every item that was
//     queued or being processed at shutdown, and every item re-added while
//     being processed, has been handed out and marked Done. Unlike
//     client-go, it does not return while items are still queued.
//   - Bounded limiter state: the per-item limiters (Exponential,
//     FastSlow) drop an item's state on Forget, and also once it has not
//     failed for twice the limiter's longest delay (at least a minute), so a
//     missed Forget costs memory for a while, not forever. WithMaxTracked
//     adds a hard cap (least recently failed goes first).
//   - Cheap by default: Add, Get and Done allocate nothing in steady state,
//     and without Metrics they never read the clock.
//
// # Concurrency and lifetime
//
// Every method of Queue, and every RateLimiter in this package, is safe for
// concurrent use. The queue returns no channels. It starts no goroutine of
// its own; the one timer behind AddAfter runs its callback in a goroutine of
// the Go runtime when it fires, and ShutDown and Drain return only after
// such a callback has let go of the queue. ShutDown is idempotent. GetCtx
// and Drain take a context and return ctx.Err() when it ends first.
//
// Tests run the queue in a testing/synctest bubble with the default clock:
// delays and backoffs then elapse exactly when the bubble's time moves (a
// worker waiting for an item due within microseconds yields a bounded
// number of times, then parks, so the bubble's time does move). Where a
// bubble cannot go (a test that also talks to a real server), Config.Clock
// and WithClock take a clock/clocktest.Fake instead.
//
// # Not guaranteed
//
//   - Adds after ShutDown are dropped (ShuttingDown reports it), as are
//     delayed items not yet due at shutdown: a closing queue takes no new
//     work and does not wait out backoffs.
//   - After ShutDown (without drain), Get still hands out the items already
//     runnable, then reports shutdown; it does not wait for items in flight.
//   - A worker that never calls Done blocks Drain: use Drain with a deadline.
//   - Items due at the same instant leave the delay heap in no set order.
//   - Len counts runnable items only (not delayed or in-flight ones) and is
//     stale as soon as it returns; do not gate Get on it.
//   - Delays are served by Go timers, which on an idle process fire up to a
//     millisecond late for sub-millisecond delays. A worker waiting for an
//     item due within 50 µs yields the processor instead of sleeping (one
//     worker at a time), so very short delays are honoured closely at the
//     cost of that much CPU.
//   - Bookkeeping is cleaned in bulk, off the per-item path: in a queue that
//     never empties, one Add in a while sweeps the table of items already
//     handed out, a pause proportional to the table's size once per that
//     many adds. Memory from a burst is given back once the queue empties
//     after a much quieter period, not while it stays busy.
//   - No priorities and no persistence: a process that dies loses its queue;
//     controllers rebuild it from their informers' state.
package workqueue
