package workqueue

import (
	"math"
	"testing"
)

// Get leaves stale entries in pending; they must not pile up, whether the
// FIFO empties often or never.
func TestPendingBookkeepingStaysBounded(t *testing.T) {
	q := New(Config[int]{})
	defer q.ShutDown()

	// Never empty: two items queued at all times, 50000 distinct ones through.
	q.Add(0)
	for i := 1; i <= 50000; i++ {
		q.Add(i)
		item, _ := q.Get()
		if item != i-1 {
			t.Fatalf("Get = %d, want %d", item, i-1)
		}
		q.Done(item)
		if n, limit := len(q.pending), trimAbove+2*q.queued+1; n > limit {
			t.Fatalf("after %d items: %d pending entries for %d queued, want <= %d", i, n, q.queued, limit)
		}
	}
	item, _ := q.Get()
	q.Done(item)

	// A burst, drained: the tables are kept for the next burst of that size...
	burst := func(n int) {
		for i := range n {
			q.Add(i)
		}
		for range n {
			item, _ := q.Get()
			q.Done(item)
		}
	}
	burst(10000)
	if len(q.pending) != 0 {
		t.Fatalf("%d pending entries after a burst of 10000, want 0 (cleared)", len(q.pending))
	}
	if q.highWater < 10000 {
		t.Fatalf("highWater = %d, want >= 10000", q.highWater)
	}
	// ...and given back after a much smaller busy period.
	burst(3)
	if q.highWater != 3 || len(q.levels[0].fifo.buf) > minRing {
		t.Fatalf("after a small cycle: highWater = %d, ring capacity %d; want 3, <= %d", q.highWater, len(q.levels[0].fifo.buf), minRing)
	}
	// A few stale entries wait for enough company to be worth a clear.
	for range minStale - 1 {
		burst(1)
	}
	if len(q.pending) == 0 || len(q.pending) >= minStale {
		t.Fatalf("pending = %d after %d single-item cycles, want stale entries kept below %d", len(q.pending), minStale-1, minStale)
	}
	burst(1)
	if len(q.pending) != 0 {
		t.Fatalf("pending = %d, want 0 once %d stale entries accumulated", len(q.pending), minStale)
	}
}

// A raised item leaves its old slot behind; once only such slots are left
// the FIFOs count as empty, so that their bookkeeping is cleared as it is
// for a queue that never used priorities.
func TestMovedSlotsDoNotKeepTheQueueFull(t *testing.T) {
	q := New(Config[int]{})
	defer q.ShutDown()
	const n = 10000
	for i := range n {
		q.AddWithOpts(AddOpts{Priority: LowPriority}, i)
	}
	q.Add(n - 1) // raised: its low slot is now the last one there
	for i := range n {
		item, _ := q.Get()
		want := i - 1
		if i == 0 {
			want = n - 1
		}
		if item != want {
			t.Fatalf("Get #%d = %d, want %d", i, item, want)
		}
		q.Done(item)
	}
	if q.queued != 0 || q.moved != 0 {
		t.Fatalf("drained: queued = %d, moved = %d; want 0, 0", q.queued, q.moved)
	}
	if len(q.pending) != 0 {
		t.Fatalf("drained: %d pending entries, want 0 (cleared)", len(q.pending))
	}
	// The queue still works at both levels.
	q.AddWithOpts(AddOpts{Priority: LowPriority}, 1)
	q.Add(2)
	for _, want := range []int{2, 1} {
		if item, _ := q.Get(); item != want {
			t.Fatalf("Get = %d, want %d", item, want)
		}
		q.Done(want)
	}
}

// Past maxLevels, a priority that maps to an item's own level does not
// move it: repeated re-adds must not grow the FIFOs.
func TestReAddsBeyondTheLevelsDoNotGrowTheQueue(t *testing.T) {
	q := New(Config[int]{})
	defer q.ShutDown()
	for i := range maxLevels {
		q.AddWithOpts(AddOpts{Priority: -i}, i) // levels 0, -1, ..., -254
	}
	if len(q.levels) != maxLevels {
		t.Fatalf("%d levels, want %d", len(q.levels), maxLevels)
	}
	for p := 1; p <= 1000; p++ {
		q.AddWithOpts(AddOpts{Priority: p}, 0) // served by level 0, where item 0 is
	}
	if q.queued != maxLevels || q.Len() != maxLevels {
		t.Fatalf("queued = %d, Len = %d after re-adds; want %d, %d", q.queued, q.Len(), maxLevels, maxLevels)
	}
	// The nearest level serves a new priority, even at the ends of int.
	q.AddWithOpts(AddOpts{Priority: math.MaxInt}, -1)
	q.AddWithOpts(AddOpts{Priority: math.MinInt}, -2)
	for item, want := range map[int]int{-1: 0, -2: -(maxLevels - 1)} {
		if got := q.levels[q.pending[item]>>levelShift].prio; got != want {
			t.Errorf("item %d queued at priority %d, want %d", item, got, want)
		}
	}
}
