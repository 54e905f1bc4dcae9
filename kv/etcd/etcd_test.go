package etcd_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/kvtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ttlSlack: etcd's lessor looks for expired leases every 500 ms, and the
// revoke is a raft round of its own.
const ttlSlack = time.Second

func newStore(t testing.TB, eps []string, cfg etcd.Config) *etcd.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg.Endpoints = eps
	s, err := etcd.New(ctx, cfg)
	if err != nil {
		t.Fatalf("etcd.New(%v): %v", eps, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	eps := testenv.Etcd(t)
	kvtest.Run(t, kvtest.Harness{
		Name: "etcd",
		New:  func(t testing.TB) kv.Store { return newStore(t, eps, etcd.Config{Root: "conformance"}) },
		// Closing the raw client cuts the connection and stops the
		// keep-alives without revoking anything.
		Kill: func(t testing.TB, s kv.Store) { _ = s.(*etcd.Store).Client().Close() },
		Compact: func(t testing.TB, s kv.Store, rev uint64) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := s.(*etcd.Store).Client().Compact(ctx, int64(rev), clientv3.WithCompactPhysical()); err != nil {
				t.Fatalf("Compact(%d): %v", rev, err)
			}
		},
		MinTTL:   etcd.DefaultMinTTL,
		TTLSlack: ttlSlack,
	})
}
