package memory_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
	"github.com/regentkv/regent/kv/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func harness(b *memory.Backend) kvtest.Harness {
	return kvtest.Harness{
		Name: "memory",
		New:  func(testing.TB) kv.Store { return b.Client() },
		Kill: func(t testing.TB, s kv.Store) { s.(*memory.Store).Kill() },
		Compact: func(t testing.TB, s kv.Store, rev uint64) {
			s.(*memory.Store).Backend().Compact(rev)
		},
		MinTTL:   memory.MinTTL,
		TTLSlack: 50 * time.Millisecond,
	}
}

func TestConformance(t *testing.T) {
	b := memory.NewBackend()
	t.Cleanup(b.Close)
	kvtest.Run(t, harness(b))
}
