package workqueue

import "testing"

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
