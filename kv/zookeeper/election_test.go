package zookeeper_test

import (
	"context"
	"testing"
	"time"

	"github.com/regentkv/regent/election/electiontest"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
	"github.com/regentkv/regent/kv/zookeeper"
)

// TestElection runs the lock/election suite on a real ZooKeeper. Each
// client reaches the server through a proxy of its own, so that one client
// can be killed or cut off while the others carry on.
func TestElection(t *testing.T) {
	const ttl = 3 * time.Second
	c := testenv.NewCutter(server.Servers()[0], func(t testing.TB, addr string) kv.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg := config([]string{addr}, "/election")
		cfg.SessionTimeout = ttl
		s, err := zookeeper.New(ctx, cfg)
		if err != nil {
			t.Fatalf("zookeeper.New: %v", err)
		}
		return s
	})
	electiontest.Run(t, electiontest.Harness{
		Harness: kvtest.Harness{
			Name: "zookeeper", New: c.New, Kill: c.Cut,
			MinTTL: zookeeper.MinTTL, TTLSlack: ttl,
		},
		TTL: ttl,
		Cut: c.Cut,
	})
}
