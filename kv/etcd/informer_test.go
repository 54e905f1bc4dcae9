package etcd_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/informer/informertest"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/etcd/embedded"
)

// TestInformer runs the informer suite on an embedded etcd of its own, so
// that the restart case can stop and restart it on the same data dir.
func TestInformer(t *testing.T) {
	srv := testenv.EtcdServer(t)
	informertest.Run(t, informertest.Harness{
		Name: "etcd",
		New: func(t testing.TB) kv.Store {
			return newStore(t, srv.Endpoints(), etcd.Config{Root: "informer", DialTimeout: 2 * time.Second})
		},
		Compact: func(t testing.TB, s kv.Store, rev uint64) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := s.(*etcd.Store).Client().Compact(ctx, int64(rev), clientv3.WithCompactPhysical()); err != nil {
				t.Fatalf("Compact(%d): %v", rev, err)
			}
		},
		Restart: restarter(srv),
	})
}

// restarter is informertest's Restart for srv: stop it, then start it
// again on the same data dir and ports.
func restarter(srv *embedded.Server) func(t testing.TB) {
	return func(t testing.TB) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Stop()
		if err := srv.Restart(ctx); err != nil {
			t.Fatalf("Restart: %v", err)
		}
	}
}
