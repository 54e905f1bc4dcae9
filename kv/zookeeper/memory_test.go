package zookeeper_test

import (
	"fmt"
	"runtime"
	"testing"
)

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The tree that Snapshot leaves armed for Events compares stats only: the
// values live once, in the returned pairs. A mirror keeping its own copy
// doubles the memory of every cache built on Events (the informer's).
func TestSnapshotKeepsOneCopyOfValues(t *testing.T) {
	ctx := t.Context()
	s := open(t, config(server.Servers(), "/snapmem"))
	const n, size = 100, 16 << 10
	for i := range n {
		v := make([]byte, size)
		v[0] = byte(i)
		if err := s.Put(ctx, fmt.Sprintf("big/k%03d", i), v, nil); err != nil {
			t.Fatal(err)
		}
	}
	base := liveHeap()
	snap, err := s.Snapshot(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	grew := liveHeap() - base
	if len(snap.Pairs) != n {
		t.Fatalf("snapshot has %d pairs, want %d", len(snap.Pairs), n)
	}
	runtime.KeepAlive(snap)
	// One copy is n*size; the stats, paths and armed watches add well under
	// 2 KiB per key. A second copy would add n*size more.
	if limit := uint64(n*size) * 3 / 2; grew > limit {
		t.Fatalf("heap grew %d bytes for %d values of %d bytes (one copy: %d): over %d, the values are kept twice",
			grew, n, size, n*size, limit)
	}
	t.Logf("heap grew %d bytes for %d bytes of values", grew, n*size)
}
