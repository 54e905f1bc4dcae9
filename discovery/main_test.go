package discovery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/consul"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/memory"
	"github.com/regentkv/regent/kv/zookeeper"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend opens stores on one backend; crash makes a store's process look
// dead to the server (no deregistration, no renewals) while it stays open.
type backend struct {
	name  string
	new   func(t testing.TB) kv.Store
	crash func(t testing.TB, s kv.Store)
	heal  func(t testing.TB, s kv.Store) // ends crash's partition; nil on memory, which has no session to lose
	ttl   time.Duration                  // the registrations' TTL: the backend's minimum or near it
	reap  time.Duration                  // how late after the TTL the server may remove a record
}

// backends are memory and, unless -short, a real etcd, ZooKeeper and Consul
// on loopback, each behind a cuttable proxy (testenv.Cutter).
func backends(t *testing.T) []backend {
	mem := memory.NewBackend()
	t.Cleanup(mem.Close)
	bs := []backend{{
		name: "memory",
		new: func(t testing.TB) kv.Store {
			s := mem.Client()
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		crash: func(_ testing.TB, s kv.Store) { s.(*memory.Store).Kill() },
		ttl:   time.Second,
		reap:  100 * time.Millisecond,
	}}
	if testing.Short() {
		return bs
	}
	open := func(t testing.TB, f func(ctx context.Context) (kv.Store, error)) kv.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := f(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	etcdCut := testenv.NewCutter(strings.TrimPrefix(testenv.Etcd(t)[0], "http://"), func(t testing.TB, addr string) kv.Store {
		return open(t, func(ctx context.Context) (kv.Store, error) {
			return etcd.New(ctx, etcd.Config{Endpoints: []string{addr}, Root: "discovery", DialTimeout: 2 * time.Second})
		})
	})
	zkCut := testenv.NewCutter(testenv.ZooKeeper(t).Addr, func(t testing.TB, addr string) kv.Store {
		return open(t, func(ctx context.Context) (kv.Store, error) {
			return zookeeper.New(ctx, zookeeper.Config{Servers: []string{addr}, Root: "/discovery", SessionTimeout: 2 * time.Second})
		})
	})
	consulCut := testenv.NewCutter(testenv.Consul(t, testenv.ConsulOptions{}).Addr, func(t testing.TB, addr string) kv.Store {
		return open(t, func(ctx context.Context) (kv.Store, error) {
			return consul.New(ctx, consul.Config{Addresses: []string{addr}, Root: "discovery", SessionTTLMin: time.Second})
		})
	})
	return append(bs,
		backend{name: "etcd", new: etcdCut.New, crash: etcdCut.Cut, heal: etcdCut.Heal, ttl: 2 * time.Second, reap: time.Second},
		backend{name: "zookeeper", new: zkCut.New, crash: zkCut.Cut, heal: zkCut.Heal, ttl: 2 * time.Second, reap: time.Second},
		backend{name: "consul", new: consulCut.New, crash: consulCut.Cut, heal: consulCut.Heal, ttl: 2 * time.Second, reap: time.Second},
	)
}
