package workqueue

import (
	"cmp"
	"slices"
	"time"
)

// Priorities the controller package uses; any int is a priority.
const (
	// LowPriority is for work nobody is waiting for: a new term's first
	// pass over the cache, resyncs. Live changes, at the default priority
	// 0, are handed out before it.
	LowPriority = -100
)

// AddOpts are the options of AddWithOpts.
type AddOpts struct {
	// After delays the items, as AddAfter does.
	After time.Duration
	// RateLimited delays the items by the queue's RateLimiter too, as
	// AddRateLimited does: the longer of the two delays wins.
	RateLimited bool
	// Priority: Get hands out the highest priority first, FIFO within one
	// priority. Default 0, the priority of Add, AddAfter and
	// AddRateLimited.
	Priority int
}

// AddWithOpts adds items as Add, AddAfter or AddRateLimited would, at
// o.Priority. An item already pending (queued, delayed, or to be queued
// again after its worker's Done) keeps the higher of its priorities and,
// if delayed, the earlier of its due times; one moved to a higher priority
// goes to the back of that priority's FIFO.
func (q *Queue[T]) AddWithOpts(o AddOpts, items ...T) {
	for _, item := range items {
		d := o.After
		if o.RateLimited {
			if q.metrics != nil {
				q.metrics.Retry()
			}
			d = max(d, q.limiter.When(item))
		}
		q.addAfter(item, d, o.Priority)
	}
}

// GetWithPriority is Get that also returns the priority the item was
// handed out at.
func (q *Queue[T]) GetWithPriority() (item T, priority int, shutdown bool) {
	q.mu.Lock()
	var yields int
	for {
		if it, prio, ok := q.tryTakeLocked(); ok {
			q.mu.Unlock()
			return it, prio, false
		}
		if q.finishedLocked() {
			q.mu.Unlock()
			return item, 0, true
		}
		if q.yieldLocked(&yields) {
			continue
		}
		q.waitLocked()
		yields = 0
	}
}

// level is the FIFO of one priority. Its id (index in Queue.levels) is in
// the tickets of its items, so levels are never removed or reordered;
// byPrio orders them.
type level[T any] struct {
	prio   int
	fifo   ring[T]
	pushed uint64 // tickets handed out at this level
	// moved counts slots whose item has since moved to a higher level:
	// popping one skips it. While it is zero (always, for a queue used at
	// one priority) a pop checks nothing.
	moved int
}

// Tickets carry their level's id in the top bits: 2^56 pushes per level is
// more than a queue sees, and 255 levels (beyond which new priorities share
// the nearest existing level) more than any controller uses.
const (
	levelShift = 56
	ticketMask = 1<<levelShift - 1
	maxLevels  = 1<<(64-levelShift) - 1
)

func ticketOf(id int, n uint64) uint64 { return uint64(id)<<levelShift | n }

// levelFor returns the id of the level of priority prio, made if needed.
func (q *Queue[T]) levelFor(prio int) int {
	if prio == 0 {
		return 0
	}
	for _, id := range q.byPrio {
		if q.levels[id].prio == prio {
			return id
		}
	}
	if len(q.levels) >= maxLevels {
		// Out of levels: the nearest one serves (ties go to the higher).
		best := q.byPrio[0]
		for _, id := range q.byPrio {
			if dist(q.levels[id].prio, prio) < dist(q.levels[best].prio, prio) {
				best = id
			}
		}
		return best
	}
	id := len(q.levels)
	q.levels = append(q.levels, level[T]{prio: prio})
	q.levels[id].fifo.timed = q.metrics != nil
	// byPrio runs from the highest priority down.
	at, _ := slices.BinarySearchFunc(q.byPrio, prio, func(l int, p int) int { return cmp.Compare(p, q.levels[l].prio) })
	q.byPrio = slices.Insert(q.byPrio, at, id)
	return id
}

// dist is |a-b|, which may not fit in an int (math.MaxInt - math.MinInt)
// but always fits in a uint.
func dist(a, b int) uint {
	if a > b {
		return uint(a) - uint(b)
	}
	return uint(b) - uint(a)
}

// runnableLocked is the number of items Get can hand out now.
func (q *Queue[T]) runnableLocked() int { return q.queued - q.moved }

// raiseLocked moves item, pending at ticket t, to priority prio if that is
// higher than its level's; otherwise it stays where it is.
func (q *Queue[T]) raiseLocked(item T, t uint64, prio int) {
	id := int(t >> levelShift)
	if prio <= q.levels[id].prio {
		return
	}
	// Beyond maxLevels the level that serves prio may be this one: then
	// the item is where it would go (levelFor may grow q.levels, so no
	// pointer into it is taken before).
	to := q.levelFor(prio)
	l := &q.levels[id]
	if to == id || q.levels[to].prio <= l.prio {
		return
	}
	// Its slot stays in the old FIFO, skipped when popped; it keeps the
	// time it became runnable, for the queue-latency metric.
	at := l.fifo.timeAt(int(t&ticketMask - (l.pushed - uint64(l.fifo.len()))))
	l.moved++
	q.moved++
	q.pushLocked(item, at, to)
}
