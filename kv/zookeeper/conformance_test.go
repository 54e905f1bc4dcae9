package zookeeper_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
	"github.com/regentkv/regent/kv/zookeeper"
)

func TestConformance(t *testing.T) {
	kvtest.Run(t, conformanceHarness("zookeeper", func() zookeeper.Config { return config(server.Servers(), "/kvtest") }))
}

// conformanceHarness is the conformance suite's harness for stores opened
// with cfg(): every store dials through a cutter of its own, so that Kill
// can cut it off.
func conformanceHarness(name string, cfg func() zookeeper.Config) kvtest.Harness {
	var cutters sync.Map // *zookeeper.Store -> *cutter
	return kvtest.Harness{
		Name: name,
		New: func(t testing.TB) kv.Store {
			c := &cutter{}
			cfg := cfg()
			cfg.Dialer = c.dial // under the TLS dialer, when cfg.TLS is set
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := zookeeper.New(ctx, cfg)
			if err != nil {
				t.Fatalf("zookeeper.New: %v", err)
			}
			cutters.Store(s, c)
			return s
		},
		// Closing a zk.Conn ends its session cleanly, deleting its
		// ephemeral znodes at once: not a death. Cutting the TCP
		// connection and refusing to reconnect leaves the session to
		// expire on the server, as when a process dies.
		Kill: func(t testing.TB, s kv.Store) {
			c, ok := cutters.Load(s)
			if !ok {
				t.Fatalf("Kill: store %p not from New", s)
			}
			c.(*cutter).cut()
		},
		Compact: func(t testing.TB, s kv.Store, rev uint64) {
			zookeeper.Compact(s.(*zookeeper.Store), rev)
		},
		MinTTL: zookeeper.MinTTL,
		// KeepAlive keys and locks live as long as the session.
		MinKeepAliveTTL: testSessionTimeout,
		// ZooKeeper keeps no history: the driver replays what znode stats
		// prove (keys created since) and reports ErrCompacted otherwise.
		StreamNoHistory: true,
		// KeepAlive keys and locks go with the session, which the server
		// expires testSessionTimeout after the client's last ping; TTL
		// nodes are reaped every check interval.
		TTLSlack: testSessionTimeout + 2*testenv.ZooKeeperCheckInterval,
	}
}
