package workqueue

// The pending set's bookkeeping: see the comment on Queue.pending. An item
// pushed on a level's FIFO gets that level's next ticket (its id in the top
// bits, see ticketOf); the FIFO has popped every ticket below
// pushed-len(FIFO), so an entry is live exactly while its ticket is at or
// above that. Slots of items moved to a higher level stay in their FIFO
// until popped; they have no entry pointing at them, so they do not change
// that rule.

// liveLocked reports whether ticket t is still in its level's FIFO.
func (q *Queue[T]) liveLocked(t uint64) bool {
	l := &q.levels[t>>levelShift]
	return t&ticketMask >= l.pushed-uint64(l.fifo.len())
}

// pushLocked queues item at level id.
func (q *Queue[T]) pushLocked(item T, at int64, id int) {
	if len(q.pending) > 2*q.queued+max(trimAbove, q.tablePeak/2) {
		// The FIFOs have not emptied for a while and stale entries
		// outnumber live ones by more than half the table: sweep them
		// before the table grows to hold more. A sweep walks the whole
		// table (about tablePeak slots), so this spacing makes it O(1)
		// per push. Done here rather than on pop, so a queue draining
		// without new adds never sweeps: the clear when it empties is
		// cheaper.
		q.sweepLocked()
	}
	l := &q.levels[id]
	q.pending[item] = ticketOf(id, l.pushed)
	q.tablePeak = max(q.tablePeak, len(q.pending))
	l.pushed++
	l.fifo.push(item, at)
	q.queued++
	q.cyclePeak = max(q.cyclePeak, q.queued)
	q.wakeOneLocked()
}

// popLocked takes the head of the highest non-empty level, skipping slots
// whose item moved up; its pending entry goes stale. ok is false when no
// level holds a runnable item.
func (q *Queue[T]) popLocked() (item T, at int64, prio int, ok bool) {
	if len(q.levels) == 1 {
		// One priority, nothing ever moved: the queue before priorities.
		l := &q.levels[0]
		if l.fifo.len() == 0 {
			return item, 0, 0, false
		}
		item, at = l.fifo.pop()
		q.queued--
		q.stalePops++
		q.cleanIfEmptyLocked()
		return item, at, 0, true
	}
	for _, id := range q.byPrio {
		l := &q.levels[id]
		for l.fifo.len() > 0 {
			head := l.pushed - uint64(l.fifo.len()) // the head's ticket
			item, at = l.fifo.pop()
			q.queued--
			if l.moved > 0 {
				if cur, found := q.pending[item]; !found || cur != ticketOf(id, head) {
					l.moved-- // moved up: handed out from there
					q.moved--
					q.cleanIfEmptyLocked()
					continue
				}
			}
			q.stalePops++
			if q.moved > 0 && q.queued == q.moved {
				q.dropMovedLocked()
			}
			q.cleanIfEmptyLocked()
			return item, at, l.prio, true
		}
	}
	var zero T
	return zero, 0, 0, false
}

// dropMovedLocked empties the FIFOs once every slot left in them is one
// whose item moved up and has since been handed out: Get, which stops
// looking when nothing is runnable, would never pop them, and the FIFOs
// would never empty, so cleanLocked would never run. No pending entry
// points at such a slot, so dropping them changes no entry's liveness.
func (q *Queue[T]) dropMovedLocked() {
	for i := range q.levels {
		if l := &q.levels[i]; l.moved > 0 {
			l.fifo.clear()
			l.moved = 0
		}
	}
	q.queued, q.moved = 0, 0
}

func (q *Queue[T]) cleanIfEmptyLocked() {
	if q.queued == 0 {
		q.cleanLocked()
	}
}

func (q *Queue[T]) sweepLocked() {
	for it, t := range q.pending {
		if !q.liveLocked(t) {
			delete(q.pending, it)
		}
	}
	q.stalePops = 0
}

// cleanLocked runs when the FIFOs empty, when every pending entry is
// stale. Stale entries cost nothing but memory, so they are cleared only
// once there are enough of them to pay for one clear of the table, whose
// cost grows with its capacity (about highWater).
func (q *Queue[T]) cleanLocked() {
	q.highWater = max(q.highWater, q.cyclePeak)
	switch {
	case q.highWater > trimAbove && q.cyclePeak < q.highWater/8:
		// The tables were sized by a burst that is over: give them back.
		q.pending = make(map[T]uint64, 64)
		for i := range q.levels {
			q.levels[i].fifo.release()
		}
		q.highWater = q.cyclePeak
		q.stalePops, q.tablePeak = 0, 0
	case q.stalePops >= max(minStale, q.highWater/8):
		clear(q.pending)
		q.stalePops = 0
	}
	q.cyclePeak = 0
}

// minStale is the number of stale entries below which clearing them is not
// worth a call.
const minStale = 32

// trimAbove is the table size (in items) below which memory is not worth
// giving back, and the slack of stale entries tolerated before a sweep.
const trimAbove = 4096
