package workqueue

// ring is the FIFO of runnable items. A slice used as a queue (append at the
// back, reslice at the front) keeps reallocating as its window slides along
// the backing array; a power-of-two ring reuses one array, so steady-state
// Add/Get cost no allocation.
type ring[T any] struct {
	buf  []slot[T]
	head int // index of the oldest element
	n    int
}

// slot carries the time the item became runnable, for the queue-latency
// metric; it stays zero when metrics are off.
type slot[T any] struct {
	item T
	at   int64
}

const minRing = 16

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) push(item T, at int64) {
	if r.n == len(r.buf) {
		r.resize(max(minRing, 2*len(r.buf)))
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = slot[T]{item: item, at: at}
	r.n++
}

func (r *ring[T]) pop() slot[T] {
	s := r.buf[r.head]
	// Clear the slot so a popped item is not kept alive by the array.
	r.buf[r.head] = slot[T]{}
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	// Give memory back after a burst, with hysteresis (shrink at a quarter,
	// to half) so a queue hovering at a boundary does not thrash.
	if len(r.buf) > 1024 && r.n < len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
	return s
}

func (r *ring[T]) resize(size int) {
	buf := make([]slot[T], size)
	for i := 0; i < r.n; i++ {
		buf[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = buf, 0
}
