package workqueue

import (
	"math"
	"runtime"
	"time"

	"github.com/regentkv/regent/clock"
)

// delayState holds items added with AddAfter until they are due. It is a
// min-heap on due time plus a map giving each item's earliest due time, and
// one Timer armed for the heap's head. No goroutine waits on it: the timer
// callback moves due items to the FIFO, and Get moves them too, so a worker
// that asks after the due time does not wait for the callback.
//
// Lowering an item's due time pushes a new heap entry instead of fixing the
// old one in place (which would need a position index updated on every
// swap); the outdated entry is skipped when it surfaces, and the heap is
// rebuilt if outdated entries ever outnumber live ones.
type delayState[T comparable] struct {
	heap    []waitEntry[T]
	waiting map[T]int64 // item -> earliest due time
	// prio holds the priority of waiting items added at one other than 0
	// (AddWithOpts): nil until then, so delays at the default priority
	// cost what they did before priorities.
	prio map[T]int

	timer   clock.Timer
	armed   bool  // timer believed pending
	armedAt int64 // due time it is armed for
	// fires counts timer runs scheduled or started whose callback has not
	// yet taken the lock. ShutDown waits for zero, so no callback touches
	// the queue after it returns.
	fires int
}

type waitEntry[T comparable] struct {
	item T
	at   int64
}

func (d *delayState[T]) init() { d.waiting = make(map[T]int64) }

func (d *delayState[T]) pending() bool { return len(d.heap) > 0 }

// AddAfter adds item once duration has passed; a duration <= 0 adds it now.
// If item is already waiting, the earlier due time wins. After ShutDown it
// does nothing.
func (q *Queue[T]) AddAfter(item T, duration time.Duration) { q.addAfter(item, duration, 0) }

// addAfter is AddAfter at priority prio. An item already waiting keeps the
// earlier due time and the higher priority.
func (q *Queue[T]) addAfter(item T, duration time.Duration, prio int) {
	if duration <= 0 {
		q.add(item, prio)
		return
	}
	q.mu.Lock()
	if q.shuttingDown {
		q.mu.Unlock()
		return
	}
	now := q.since()
	at := now + int64(duration)
	if at < now { // overflow: a delay of centuries
		at = math.MaxInt64
	}
	d := &q.delay
	prev, waiting := d.waiting[item]
	if prio > d.prio[item] || (!waiting && prio != 0) {
		// Waiting at a lower priority (absent: 0), or new at another
		// than 0.
		if d.prio == nil {
			d.prio = make(map[T]int)
		}
		d.prio[item] = prio
	}
	if waiting && prev <= at {
		q.mu.Unlock()
		return
	}
	d.waiting[item] = at
	d.push(waitEntry[T]{item: item, at: at})
	if len(d.heap) > 2*len(d.waiting)+64 {
		d.compact()
	}
	q.armLocked(now)
	q.mu.Unlock()
}

// spinWindow is how close a delayed item's due time must be for a worker to
// yield rather than sleep until it. Go's timers cannot sleep briefly on an
// idle process: measured here, a 1 µs timer fires 35 µs to 400 µs late and
// a 10 µs one about 1 ms late, because the runtime's poller sleeps in whole
// milliseconds. Yielding costs at most this much CPU per wait, by one worker
// at a time, and only for delays this short, which the default rate limits
// (5 ms and up) never produce.
const spinWindow = 50 * time.Microsecond

// maxYields bounds the yields of one wait; then the worker parks until the
// timer. A yield takes well under a microsecond on a busy processor and
// more on an idle one, so this covers the spin window in practice; the
// bound is for clocks that do not move while a goroutine spins: in a
// testing/synctest bubble, time only advances once every goroutine is
// durably blocked, which a yielding one never is.
const maxYields = 1 << 12

// yieldLocked lets one worker with nothing runnable wait for an item due
// within spinWindow by yielding the processor instead of parking, at most
// maxYields times per wait (*yields counts them); the caller re-checks
// the queue when it returns true. It drops and retakes mu.
func (q *Queue[T]) yieldLocked(yields *int) bool {
	d := &q.delay
	if q.spinning || *yields >= maxYields || len(d.heap) == 0 || d.heap[0].at-q.since() > int64(spinWindow) {
		return false
	}
	*yields++
	q.spinning = true
	q.mu.Unlock()
	runtime.Gosched()
	q.mu.Lock()
	q.spinning = false
	return true
}

// promoteLocked moves every item due at now to the FIFO.
func (q *Queue[T]) promoteLocked(now int64) {
	d := &q.delay
	for len(d.heap) > 0 && d.heap[0].at <= now {
		e := d.pop()
		if at, ok := d.waiting[e.item]; !ok || at != e.at {
			continue // outdated entry
		}
		delete(d.waiting, e.item)
		var stamp int64
		if q.metrics != nil {
			stamp = now
		}
		prio := 0
		if len(d.prio) > 0 {
			prio = d.prio[e.item]
			delete(d.prio, e.item)
		}
		q.addLocked(e.item, stamp, prio)
	}
	if len(d.heap) > 0 {
		return
	}
	if d.armed {
		// Nothing left to wait for: cancel the run rather than let it wake
		// a goroutine for nothing.
		if d.timer.Stop() {
			d.fires--
		}
		d.armed = false
	}
	if cap(d.heap) > trimAbove {
		// Give a burst's memory back (maps never shrink; reallocate).
		d.heap, d.waiting, d.prio = nil, make(map[T]int64), nil
	}
}

// armLocked makes sure the timer runs no later than the heap's head is due.
func (q *Queue[T]) armLocked(now int64) {
	d := &q.delay
	if len(d.heap) == 0 {
		return
	}
	at := d.heap[0].at
	if d.armed && d.armedAt <= at {
		return
	}
	wait := time.Duration(at - now)
	switch {
	case d.timer == nil:
		d.timer = q.clock.AfterFunc(wait, q.fire)
		d.fires++
	case !d.timer.Reset(wait):
		d.fires++ // a new run was scheduled
	}
	d.armed, d.armedAt = true, at
}

// fire is the timer callback.
func (q *Queue[T]) fire() {
	q.mu.Lock()
	d := &q.delay
	d.fires--
	d.armed = false
	if q.shuttingDown {
		if d.fires == 0 {
			q.idle.Broadcast()
		}
		q.mu.Unlock()
		return
	}
	now := q.since()
	q.promoteLocked(now)
	q.armLocked(now)
	q.mu.Unlock()
}

func (q *Queue[T]) dropDelayedLocked() {
	d := &q.delay
	clear(d.heap)
	d.heap = d.heap[:0]
	clear(d.waiting)
	clear(d.prio)
	if d.timer != nil && d.timer.Stop() {
		d.fires--
	}
	d.armed = false
}

func (q *Queue[T]) waitFiresLocked() {
	for q.delay.fires > 0 {
		q.idle.Wait()
	}
}

// The heap is hand-written rather than container/heap so that entries are
// not boxed into interfaces (an allocation per push).

func (d *delayState[T]) push(e waitEntry[T]) {
	d.heap = append(d.heap, e)
	d.up(len(d.heap) - 1)
}

func (d *delayState[T]) pop() waitEntry[T] {
	h := d.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = waitEntry[T]{}
	d.heap = h[:last]
	if last > 0 {
		d.down(0)
	}
	return top
}

func (d *delayState[T]) up(i int) {
	h := d.heap
	for i > 0 {
		p := (i - 1) / 2
		if h[p].at <= h[i].at {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (d *delayState[T]) down(i int) {
	h := d.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].at < h[l].at {
			m = r
		}
		if h[i].at <= h[m].at {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// compact drops outdated entries and restores the heap order.
func (d *delayState[T]) compact() {
	live := d.heap[:0]
	for _, e := range d.heap {
		if at, ok := d.waiting[e.item]; ok && at == e.at {
			live = append(live, e)
		}
	}
	clear(d.heap[len(live):])
	d.heap = live
	for i := len(live)/2 - 1; i >= 0; i-- {
		d.down(i)
	}
}
