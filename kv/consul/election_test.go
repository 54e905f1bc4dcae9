package consul

import (
	"testing"
	"time"

	"github.com/regentkv/regent/election/electiontest"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
)

// TestElection runs the lock/election suite on a real Consul agent. Each
// client reaches the agent through a proxy of its own, so that one client
// can be killed or cut off while the others carry on.
func TestElection(t *testing.T) {
	const ttl = 3 * time.Second
	srv := agent(t)
	c := testenv.NewCutter(srv.Addr, func(t testing.TB, addr string) kv.Store {
		cfg := testConfig(addr)
		cfg.LockTTL = ttl
		return openStore(t, cfg)
	})
	electiontest.Run(t, electiontest.Harness{
		Harness: kvtest.Harness{
			Name: "consul", New: c.New, Kill: c.Cut,
			// The session timer fires TTL after the last renewal; the
			// invalidation is one raft apply.
			MinTTL: testMinTTL, TTLSlack: 500 * time.Millisecond,
		},
		TTL: ttl,
		Cut: c.Cut,
	})
}
