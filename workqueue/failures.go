package workqueue

import (
	"math"
	"sync"
	"time"

	"github.com/regentkv/regent/clock"
)

// failureTable counts failures per item for the per-item limiters, with
// bounded state. client-go's limiters keep an entry until Forget, so a
// reconciler that misses one Forget leaks an entry forever. Here an entry
// also goes away when it has been idle for longer than ttl (set so that by
// then the item's backoff would have been served and it is fair to start
// over), and, optionally, when a cap on the number of entries is reached
// (least recently failed first).
//
// Entries sit in a slab linked in order of last failure, so both kinds of
// eviction take the list's tail in O(1), expiry is done lazily by the calls
// that touch the table (no goroutine), and a steady state allocates nothing.
type failureTable[T comparable] struct {
	mu         sync.Mutex
	clock      clock.Clock
	epoch      time.Time
	ttl        int64
	maxTracked int

	index      map[T]int32
	nodes      []failureNode[T]
	free       int32 // free-list head, -1 when empty
	head, tail int32 // most and least recently failed, -1 when empty
}

type failureNode[T comparable] struct {
	item       T
	failures   int
	last       int64 // time of the last failure, ns since epoch
	prev, next int32
}

// minFailureTTL keeps requeue counts meaningful for limiters whose longest
// delay is tiny: NumRequeues is often used to give up after N attempts.
const minFailureTTL = time.Minute

// failureTTL is twice the longest delay (the item has had time to be
// retried at that delay and fail again), at least minFailureTTL, without
// overflowing.
func failureTTL(longest time.Duration) int64 {
	if longest > math.MaxInt64/2 {
		return math.MaxInt64
	}
	return int64(max(2*longest, minFailureTTL))
}

func newFailureTable[T comparable](o limiterOptions, ttl int64) *failureTable[T] {
	return &failureTable[T]{
		clock:      o.clock,
		epoch:      o.clock.Now(),
		ttl:        ttl,
		maxTracked: o.maxTracked,
		index:      make(map[T]int32),
		free:       -1,
		head:       -1,
		tail:       -1,
	}
}

func (t *failureTable[T]) now() int64 { return int64(t.clock.Now().Sub(t.epoch)) }

// record counts one more failure of item and returns the count before it.
func (t *failureTable[T]) record(item T) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.expire(now)
	i, ok := t.index[item]
	if ok {
		t.unlink(i)
	} else {
		if t.maxTracked > 0 && len(t.index) >= t.maxTracked {
			t.remove(t.tail)
		}
		i = t.alloc(item)
		t.index[item] = i
	}
	t.pushFront(i)
	n := &t.nodes[i]
	prev := n.failures
	n.failures++
	n.last = now
	return prev
}

func (t *failureTable[T]) count(item T) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(t.now())
	if i, ok := t.index[item]; ok {
		return t.nodes[i].failures
	}
	return 0
}

func (t *failureTable[T]) forget(item T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[item]; ok {
		t.remove(i)
	}
}

// tracked is the number of entries, for tests and introspection.
func (t *failureTable[T]) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(t.now())
	return len(t.index)
}

func (t *failureTable[T]) expire(now int64) {
	for t.tail >= 0 && now-t.nodes[t.tail].last > t.ttl {
		t.remove(t.tail)
	}
}

func (t *failureTable[T]) alloc(item T) int32 {
	var i int32
	if t.free >= 0 {
		i = t.free
		t.free = t.nodes[i].next
	} else {
		t.nodes = append(t.nodes, failureNode[T]{})
		i = int32(len(t.nodes) - 1)
	}
	t.nodes[i] = failureNode[T]{item: item, prev: -1, next: -1}
	return i
}

func (t *failureTable[T]) remove(i int32) {
	t.unlink(i)
	delete(t.index, t.nodes[i].item)
	t.nodes[i] = failureNode[T]{next: t.free, prev: -1}
	t.free = i
	if len(t.index) == 0 && len(t.nodes) > 64 {
		// Return a burst's slab to the allocator once it is all free.
		t.nodes, t.free = nil, -1
	}
}

func (t *failureTable[T]) unlink(i int32) {
	n := &t.nodes[i]
	if n.prev >= 0 {
		t.nodes[n.prev].next = n.next
	} else {
		t.head = n.next
	}
	if n.next >= 0 {
		t.nodes[n.next].prev = n.prev
	} else {
		t.tail = n.prev
	}
	n.prev, n.next = -1, -1
}

func (t *failureTable[T]) pushFront(i int32) {
	n := &t.nodes[i]
	n.prev, n.next = -1, t.head
	if t.head >= 0 {
		t.nodes[t.head].prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}
