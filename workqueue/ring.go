package workqueue

// ring is the FIFO of runnable items. A slice used as a queue (append at the
// back, reslice at the front) keeps reallocating as its window slides along
// the backing array; a power-of-two ring reuses one array, so steady-state
// Add/Get cost no allocation.
//
// times, parallel to buf, holds when each item became runnable, for the
// queue-latency metric. It is nil when metrics are off, so a queue without
// metrics stores nothing but its items.
type ring[T any] struct {
	buf   []T
	times []int64
	timed bool
	head  int // index of the oldest element
	n     int
}

const minRing = 16

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) push(item T, at int64) {
	if r.n == len(r.buf) {
		r.resize(max(minRing, 2*len(r.buf)))
	}
	i := (r.head + r.n) & (len(r.buf) - 1)
	r.buf[i] = item
	if r.timed {
		r.times[i] = at
	}
	r.n++
}

func (r *ring[T]) pop() (item T, at int64) {
	var zero T
	item = r.buf[r.head]
	// Clear the slot so a popped item is not kept alive by the array.
	r.buf[r.head] = zero
	if r.timed {
		at = r.times[r.head]
	}
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return item, at
}

// timeAt is when the i-th item from the head became runnable (0 untimed).
func (r *ring[T]) timeAt(i int) int64 {
	if !r.timed {
		return 0
	}
	return r.times[(r.head+i)&(len(r.buf)-1)]
}

// clear empties the ring, keeping its arrays; the slots are zeroed so that
// no dropped item is kept alive by them.
func (r *ring[T]) clear() {
	var zero T
	for i := range r.n {
		r.buf[(r.head+i)&(len(r.buf)-1)] = zero
	}
	r.head, r.n = 0, 0
}

// release drops the backing arrays of an empty ring, after a burst.
func (r *ring[T]) release() {
	r.buf, r.times, r.head = nil, nil, 0
}

func (r *ring[T]) resize(size int) {
	buf := make([]T, size)
	var times []int64
	if r.timed {
		times = make([]int64, size)
	}
	mask := len(r.buf) - 1
	for i := 0; i < r.n; i++ {
		j := (r.head + i) & mask
		buf[i] = r.buf[j]
		if r.timed {
			times[i] = r.times[j]
		}
	}
	r.buf, r.times, r.head = buf, times, 0
}
