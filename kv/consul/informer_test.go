package consul

import (
	"testing"

	"github.com/regentkv/regent/informer/informertest"
	"github.com/regentkv/regent/kv"
)

// TestInformer runs the informer suite on the package's shared Consul
// agent.
func TestInformer(t *testing.T) {
	srv := agent(t)
	informertest.Run(t, informertest.Harness{
		Name: "consul",
		New:  func(t testing.TB) kv.Store { return openStore(t, testConfig(srv.Addr)) },
		// No history: resuming after a cut may re-list.
		NoHistory: true,
		Compact: func(_ testing.TB, s kv.Store, rev uint64) {
			s.(*Store).Compact(rev)
		},
	})
}
