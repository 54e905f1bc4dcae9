package consul

import (
	"testing"

	"github.com/regentkv/regent/informer/informertest"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
)

// TestInformer runs the informer suite on Consul. Clients reach the agent
// through a proxy, so that the restart case can replace the agent: a -dev
// agent keeps no data, so "restart" is a fresh agent behind the same
// address, and the case checks that the informer notices the index reset,
// re-lists and deletes the lost keys with tombstones.
func TestInformer(t *testing.T) {
	srv := testenv.Consul(t, testenv.ConsulOptions{})
	px := testenv.NewProxy(t, srv.Addr)
	informertest.Run(t, informertest.Harness{
		Name: "consul",
		New:  func(t testing.TB) kv.Store { return openStore(t, testConfig(px.Addr())) },
		// No history: resuming after a cut may re-list.
		NoHistory: true,
		Compact: func(_ testing.TB, s kv.Store, rev uint64) {
			s.(*Store).compact(rev)
		},
		Restart: func(t testing.TB) {
			srv.Stop()
			srv = testenv.Consul(t, testenv.ConsulOptions{})
			px.SwitchTo(srv.Addr)
		},
		RestartLosesData: true,
	})
}
