package etcd_test

import (
	"strings"
	"testing"
	"time"

	"github.com/regentkv/regent/election/electiontest"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/kvtest"
)

// TestElection runs the lock/election suite on a real etcd. Each client
// reaches the server through a proxy of its own, so that one client can be
// killed or cut off while the others carry on.
func TestElection(t *testing.T) {
	addr := strings.TrimPrefix(testenv.Etcd(t)[0], "http://")
	c := testenv.NewCutter(addr, func(t testing.TB, addr string) kv.Store {
		return newStore(t, []string{addr}, etcd.Config{Root: "election", DialTimeout: 2 * time.Second})
	})
	electiontest.Run(t, electiontest.Harness{
		Harness: kvtest.Harness{
			Name: "etcd", New: c.New, Kill: c.Cut,
			MinTTL: etcd.DefaultMinTTL, TTLSlack: ttlSlack,
		},
		TTL: 3 * time.Second,
		Cut: c.Cut,
	})
}
