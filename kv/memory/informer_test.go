package memory_test

import (
	"testing"

	"github.com/regentkv/regent/informer/informertest"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
)

// TestInformer runs the informer suite on the memory backend, which has no
// server to restart.
func TestInformer(t *testing.T) {
	b := memory.NewBackend()
	t.Cleanup(b.Close)
	informertest.Run(t, informertest.Harness{
		Name: "memory",
		New:  func(testing.TB) kv.Store { return b.Client() },
		Compact: func(_ testing.TB, s kv.Store, rev uint64) {
			s.(*memory.Store).Backend().Compact(rev)
		},
	})
}
