package zookeeper_test

import (
	"context"
	"testing"
	"time"

	"github.com/regentkv/regent/informer/informertest"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/zookeeper"
)

// TestInformer runs the informer suite on a ZooKeeper of its own, so that
// the restart case can kill it and start it again on the same data dir
// without disturbing the package's shared server.
func TestInformer(t *testing.T) {
	srv := testenv.ZooKeeper(t)
	informertest.Run(t, informertest.Harness{
		Name: "zookeeper",
		New: func(t testing.TB) kv.Store {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := zookeeper.New(ctx, config(srv.Servers(), "/informer"))
			if err != nil {
				t.Fatalf("zookeeper.New: %v", err)
			}
			return s
		},
		// No history: resuming after a cut may re-list.
		NoHistory: true,
		Compact: func(_ testing.TB, s kv.Store, rev uint64) {
			zookeeper.Compact(s.(*zookeeper.Store), rev)
		},
		Restart: func(t testing.TB) {
			srv.Stop(t)
			srv.Start(t)
		},
	})
}
