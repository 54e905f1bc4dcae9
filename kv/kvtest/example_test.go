package kvtest_test

import (
	"testing"
	"time"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
	"github.com/regentkv/regent/kv/memory"
)

// A driver runs the suite from its own tests against its real server; this
// is kv/memory's harness. Kill must cut the client off without releasing
// anything, and Compact is required because memory implements kv.Streamer.
func Example() {
	b := memory.NewBackend()
	defer b.Close()
	h := kvtest.Harness{
		Name: "memory",
		New:  func(testing.TB) kv.Store { return b.Client() },
		Kill: func(_ testing.TB, s kv.Store) { s.(*memory.Store).Kill() },
		Compact: func(_ testing.TB, _ kv.Store, rev uint64) {
			b.Compact(rev)
		},
		MinTTL:   memory.MinTTL,
		TTLSlack: 50 * time.Millisecond,
	}
	// In a test function:
	//
	//	func TestConformance(t *testing.T) { kvtest.Run(t, h) }
	_ = h
}
