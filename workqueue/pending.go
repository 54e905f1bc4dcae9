package workqueue

// The pending set's bookkeeping: see the comment on Queue.pending. An item
// pushed on the FIFO gets the next ticket; the FIFO has popped every ticket
// below pushed-len(FIFO), so an entry is live exactly while its ticket is at
// or above that.

// liveLocked reports whether ticket t is still in the FIFO.
func (q *Queue[T]) liveLocked(t uint64) bool { return t >= q.pushed-uint64(q.fifo.len()) }

func (q *Queue[T]) pushLocked(item T, at int64) {
	if len(q.pending) > 2*q.fifo.len()+max(trimAbove, q.tablePeak/2) {
		// The FIFO has not emptied for a while and stale entries outnumber
		// live ones by more than half the table: sweep them before the
		// table grows to hold more. A sweep walks the whole table (about
		// tablePeak slots), so this spacing makes it O(1) per push. Done
		// here rather than on pop, so a queue draining without new adds
		// never sweeps: the clear when it empties is cheaper.
		q.sweepLocked()
	}
	q.pending[item] = q.pushed
	q.tablePeak = max(q.tablePeak, len(q.pending))
	q.pushed++
	q.fifo.push(item, at)
	q.cyclePeak = max(q.cyclePeak, q.fifo.len())
	q.wakeOneLocked()
}

// popLocked takes the FIFO's head; its pending entry goes stale.
func (q *Queue[T]) popLocked() (T, int64) {
	item, at := q.fifo.pop()
	q.stalePops++
	if q.fifo.len() == 0 {
		q.cleanLocked()
	}
	return item, at
}

func (q *Queue[T]) sweepLocked() {
	for it, t := range q.pending {
		if !q.liveLocked(t) {
			delete(q.pending, it)
		}
	}
	q.stalePops = 0
}

// cleanLocked runs when the FIFO empties, when every pending entry is
// stale. Stale entries cost nothing but memory, so they are cleared only
// once there are enough of them to pay for one clear of the table, whose
// cost grows with its capacity (about highWater).
func (q *Queue[T]) cleanLocked() {
	q.highWater = max(q.highWater, q.cyclePeak)
	switch {
	case q.highWater > trimAbove && q.cyclePeak < q.highWater/8:
		// The tables were sized by a burst that is over: give them back.
		q.pending = make(map[T]uint64, 64)
		q.fifo.release()
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
