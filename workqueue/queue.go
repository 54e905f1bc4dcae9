package workqueue

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/clock"
)

// Queue is a typed, de-duplicating, delaying, rate-limited work queue. See
// the package documentation for its guarantees. All methods are safe for
// concurrent use. Make one with New; the zero Queue is not usable.
type Queue[T comparable] struct {
	mu sync.Mutex
	// Two conditions on mu, so that Signal (one runnable item, one worker)
	// can never wake a goroutine that is not waiting for an item.
	cond sync.Cond // Get waiters: an item became runnable, or shutdown
	idle sync.Cond // Drain and ShutDown: the queue emptied, a timer run ended

	// Item bookkeeping. client-go keeps a dirty set and a processing set
	// and touches the large dirty set four times per item, each a likely
	// cache miss once the queue is deep. Here the large set, pending, is
	// touched once per item, by Add: Get does not delete from it. Each push
	// gets a ticket (a count of pushes), and an entry is live while its
	// ticket has not been popped yet; a Get makes it stale just by popping.
	// Stale entries are removed in bulk (pending.go): by one clear when the
	// queue empties and enough have gathered, or by a sweep if they ever
	// outnumber live ones.
	// processing and redo stay as small as the number of workers;
	// processing is not even hashed (see inFlight).
	//
	// Each priority has its own FIFO (a level, priority.go); a queue used
	// at one priority has one level and pays for no other.
	levels     []level[T]   // levels[0] is priority 0; ids are in tickets
	byPrio     []int        // level ids, highest priority first
	queued     int          // slots in all FIFOs, moved ones included
	moved      int          // of those, items since moved to a higher level
	pending    map[T]uint64 // item -> ticket; live iff not yet popped
	stalePops  int          // pops since pending was last cleaned
	tablePeak  int          // largest len(pending) since its allocation
	processing inFlight[T]  // held by a worker, with start time (0 without metrics)
	redo       map[T]int    // processing items added again meanwhile, at this priority

	// Go maps never shrink, and the rings only grow. After a burst both
	// are reallocated, when the queue empties out after a busy period much
	// smaller than the burst: a queue that once held a million items does
	// not keep their tables forever, and one that oscillates between empty
	// and full does not reallocate at every cycle.
	cyclePeak int // largest number queued since the FIFOs were last empty
	highWater int // largest number queued the current tables have held

	spinning bool // a worker is yielding for an item due very soon
	waiters  int  // workers blocked in Get
	woken    int  // of those, signalled and not yet running

	shuttingDown bool
	draining     bool   // Get waits for re-queued items until all is done
	aborts       uint64 // ShutDown calls, so a Drain knows it was cut short

	delay delayState[T]

	clock   clock.Clock
	epoch   time.Time
	limiter RateLimiter[T]
	metrics Metrics // nil: no calls, no clock reads
	logger  *zap.Logger
	name    string
}

// New returns a queue configured by cfg; the zero Config is valid. The
// queue starts no goroutine: delayed items are moved by a timer callback
// that runs only while something is waiting.
func New[T comparable](cfg Config[T]) *Queue[T] {
	q := &Queue[T]{
		levels:  []level[T]{{}},
		byPrio:  []int{0},
		pending: make(map[T]uint64, 64),
		redo:    make(map[T]int),
		clock:   cfg.Clock,
		limiter: cfg.RateLimiter,
		metrics: cfg.Metrics,
		logger:  cfg.Logger,
		name:    cfg.Name,
	}
	q.cond.L = &q.mu
	q.idle.L = &q.mu
	if q.clock == nil {
		q.clock = clock.Real()
	}
	q.epoch = q.clock.Now()
	if q.limiter == nil {
		// Cannot fail: the only option is a non-nil clock.
		q.limiter, _ = DefaultRateLimiter[T](WithClock(q.clock))
	}
	if q.logger == nil {
		q.logger = zap.NewNop()
	}
	if q.metrics != nil {
		q.levels[0].fifo.timed = true
		if b, ok := q.metrics.(InFlightBinder); ok {
			b.BindInFlight(q.InFlight)
		}
	}
	q.delay.init()
	return q
}

// since is the queue's time in nanoseconds since New: an int64 compares and
// subtracts faster than a time.Time and, from the real clock, is monotonic.
func (q *Queue[T]) since() int64 { return int64(q.clock.Now().Sub(q.epoch)) }

// stamp is since when metrics need it, zero otherwise (no clock read).
func (q *Queue[T]) stamp() int64 {
	if q.metrics == nil {
		return 0
	}
	return q.since()
}

// Add marks item as needing processing. If item is already pending the
// call is a no-op; if a worker holds it, it is queued again when the worker
// calls Done. After ShutDown, Add does nothing: a closing queue accepts no
// new work (ShuttingDown tells producers).
func (q *Queue[T]) Add(item T) { q.add(item, 0) }

func (q *Queue[T]) add(item T, prio int) {
	q.mu.Lock()
	if !q.shuttingDown {
		q.addLocked(item, q.stamp(), prio)
	}
	q.mu.Unlock()
}

func (q *Queue[T]) addLocked(item T, at int64, prio int) {
	if q.processing.len() > 0 {
		if q.processing.find(item) >= 0 {
			p, again := q.redo[item]
			if !again || prio > p {
				q.redo[item] = prio
			}
			if !again && q.metrics != nil {
				q.metrics.Add()
			}
			return
		}
	}
	if t, ok := q.pending[item]; ok && q.liveLocked(t) {
		// Already pending: collapse, at the higher priority.
		if prio != 0 || t>>levelShift != 0 {
			q.raiseLocked(item, t, prio)
		}
		return
	}
	q.pushLocked(item, at, q.levelFor(prio))
	if q.metrics != nil {
		q.metrics.Add()
	}
}

// Len returns the number of runnable items: queued, not held by a worker,
// not waiting for a delay. It is informational; do not gate Get on it.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	n := q.runnableLocked()
	q.mu.Unlock()
	return n
}

// Get blocks until an item is runnable and returns it; the caller must call
// Done(item) when finished. It returns shutdown=true once the queue is shut
// down and has nothing left to hand out: the caller should then stop.
func (q *Queue[T]) Get() (item T, shutdown bool) {
	q.mu.Lock()
	var yields int
	for {
		if it, _, ok := q.tryTakeLocked(); ok {
			q.mu.Unlock()
			return it, false
		}
		if q.finishedLocked() {
			q.mu.Unlock()
			return item, true
		}
		if q.yieldLocked(&yields) {
			continue
		}
		q.waitLocked()
		yields = 0 // a new wait
	}
}

// GetCtx is Get that also returns when ctx ends. It returns ctx.Err() when
// ctx ended first and ErrShutDown once the queue is shut down and has
// nothing left to hand out.
func (q *Queue[T]) GetCtx(ctx context.Context) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	q.mu.Lock()
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	var yields int
	for {
		if it, _, ok := q.tryTakeLocked(); ok {
			q.mu.Unlock()
			return it, nil
		}
		if q.finishedLocked() {
			q.mu.Unlock()
			return zero, ErrShutDown
		}
		if err := ctx.Err(); err != nil {
			q.mu.Unlock()
			return zero, err
		}
		// Registered only when about to wait, so Get paths that find work
		// pay nothing. The callback needs mu, which Wait releases: a cancel
		// between the check above and Wait cannot be missed.
		if stop == nil && ctx.Done() != nil {
			stop = context.AfterFunc(ctx, q.wakeAll)
		}
		if q.yieldLocked(&yields) {
			continue
		}
		q.waitLocked()
		yields = 0 // a new wait
	}
}

// wakeOneLocked wakes a waiting worker for a newly runnable item, unless
// enough wake-ups are already on their way for the items in the FIFO. A
// producer that outpaces its workers would otherwise wake a worker per Add
// only for most of them to find the FIFO emptied by a worker that was
// already running: a park/unpark round trip for nothing. Undercounting
// (after a Broadcast) only costs an extra wake-up, and every woken worker
// re-checks the FIFO before sleeping again, so no item is stranded.
func (q *Queue[T]) wakeOneLocked() {
	if q.waiters > q.woken && q.woken < q.runnableLocked() {
		q.woken++
		q.cond.Signal()
	}
}

func (q *Queue[T]) waitLocked() {
	q.waiters++
	q.cond.Wait()
	q.waiters--
	if q.woken > 0 {
		q.woken--
	}
}

func (q *Queue[T]) wakeAll() {
	q.mu.Lock()
	q.cond.Broadcast()
	q.idle.Broadcast()
	q.mu.Unlock()
}

// tryTakeLocked moves due delayed items to their FIFOs, then takes the
// head of the highest priority's.
func (q *Queue[T]) tryTakeLocked() (T, int, bool) {
	if q.delay.pending() {
		q.promoteLocked(q.since())
	}
	if q.runnableLocked() == 0 {
		var zero T
		return zero, 0, false
	}
	item, at, prio, _ := q.popLocked()
	var now int64
	if q.metrics != nil {
		now = q.since()
		q.metrics.Get(time.Duration(now - at))
	}
	q.processing.add(item, now)
	return item, prio, true
}

// finishedLocked reports whether Get should report shutdown: the queue is
// shutting down and the FIFO is empty, and, while draining, no worker still
// holds an item that could be queued again by its Done.
func (q *Queue[T]) finishedLocked() bool {
	return q.shuttingDown && (!q.draining || q.emptyLocked())
}

// emptyLocked: nothing is queued or being processed.
func (q *Queue[T]) emptyLocked() bool {
	return q.runnableLocked() == 0 && q.processing.len() == 0
}

// Done marks item as processed. If it was added while being processed, it
// is queued again now. Done on an item that is not being processed is a
// caller bug: it is logged and ignored.
func (q *Queue[T]) Done(item T) {
	q.mu.Lock()
	i := q.processing.find(item)
	if i < 0 {
		q.mu.Unlock()
		q.logger.Warn("workqueue: Done on an item that is not being processed",
			zap.String("queue", q.name), zap.Any("item", item))
		return
	}
	start := q.processing.remove(i)
	var now int64
	if q.metrics != nil {
		now = q.since()
		q.metrics.Done(time.Duration(now - start))
	}
	if len(q.redo) > 0 {
		if prio, ok := q.redo[item]; ok {
			delete(q.redo, item)
			q.pushLocked(item, now, q.levelFor(prio))
		}
	}
	if q.shuttingDown && q.emptyLocked() {
		q.cond.Broadcast() // draining Gets
		q.idle.Broadcast() // drainers
	}
	q.mu.Unlock()
}

// ShutDown stops the queue without waiting for work: new adds are ignored,
// delayed items not yet due are dropped, workers keep getting the items
// already runnable and then see shutdown. It also ends a Drain in progress.
// ShutDown is idempotent; it returns once the queue's timer callback, if
// one was running, has let go of the queue.
func (q *Queue[T]) ShutDown() {
	q.mu.Lock()
	q.shutDownLocked()
	q.draining = false
	q.aborts++
	q.cond.Broadcast()
	q.idle.Broadcast()
	q.waitFiresLocked()
	q.mu.Unlock()
}

// ShutDownWithDrain is Drain without a deadline, for client-go
// compatibility: it returns when every pending and in-flight item has been
// processed, or when ShutDown cuts it short.
func (q *Queue[T]) ShutDownWithDrain() {
	_ = q.Drain(context.Background())
}

// Drain shuts the queue down like ShutDown, then waits until every item that
// was queued or being processed has been processed and marked Done,
// including items added again while being processed. Workers must keep
// calling Get and Done meanwhile. Delayed items not yet due are dropped, not
// waited for.
//
// It returns nil when drained, ctx.Err() when ctx ends first, and
// ErrDrainAborted when ShutDown is called meanwhile. After a ctx error the
// queue keeps draining (workers still get re-queued items); call ShutDown
// to let workers stop as soon as the runnable items are handed out.
func (q *Queue[T]) Drain(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutDownLocked()
	q.draining = true
	gen := q.aborts
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	var err error
	for !q.emptyLocked() {
		if q.aborts != gen {
			err = ErrDrainAborted
			break
		}
		if err = ctx.Err(); err != nil {
			break
		}
		if stop == nil && ctx.Done() != nil {
			stop = context.AfterFunc(ctx, q.wakeAll)
		}
		q.idle.Wait()
	}
	q.waitFiresLocked()
	return err
}

// ShuttingDown reports whether ShutDown, ShutDownWithDrain or Drain has
// been called.
func (q *Queue[T]) ShuttingDown() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.shuttingDown
}

func (q *Queue[T]) shutDownLocked() {
	if q.shuttingDown {
		return
	}
	// Items already due by the queue's clock are runnable, whether or not
	// the timer has fired yet (timers run late on a loaded machine): they
	// go to the FIFO before the ones not yet due are dropped.
	if q.delay.pending() {
		q.promoteLocked(q.since())
	}
	q.shuttingDown = true
	q.dropDelayedLocked()
	q.cond.Broadcast()
}

// InFlight reports the items being processed now.
func (q *Queue[T]) InFlight() InFlight {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := InFlight{Processing: q.processing.len()}
	if q.metrics == nil || f.Processing == 0 {
		return f
	}
	now := q.since()
	for _, start := range q.processing.starts {
		d := time.Duration(now - start)
		f.Unfinished += d
		f.Longest = max(f.Longest, d)
	}
	return f
}
