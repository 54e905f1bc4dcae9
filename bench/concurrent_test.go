package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/consul"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/zookeeper"
)

// callers is the number of goroutines of BenchmarkConcurrent.
const callers = 64

// BenchmarkConcurrent measures throughput under concurrency: 64 goroutines
// share one client (regent's Store, or the raw client) and each op is a
// Put then a Get of the goroutine's own key (128-byte values), so ns/op is
// the time of one Put+Get pair divided among 64 callers. On ZooKeeper the
// callers pass a cancellable ctx, so regent runs each call beside its
// caller to give way to the ctx (go-zookeeper takes none): the cost this
// measures. Before each side, a burst of unmeasured ops warms the server
// (ZooKeeper's JVM especially); -count alternates the sides.
//
//	go test -run '^$' -bench BenchmarkConcurrent -count 5
func BenchmarkConcurrent(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	value := []byte(strings.Repeat("v", 128))
	type side struct {
		name string
		op   func(key string) error
	}
	backends := []struct {
		name  string
		setup func(b *testing.B) (regent, raw func(key string) error)
	}{
		{"etcd", func(b *testing.B) (func(string) error, func(string) error) {
			ep := testenv.Etcd(b)
			s, err := etcd.New(ctx, etcd.Config{Endpoints: ep, DialTimeout: 2 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			cl, err := clientv3.New(clientv3.Config{Endpoints: ep, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = cl.Close() })
			sv := string(value)
			return regentPutGet(ctx, s, value), func(key string) error {
				if _, err := cl.Put(ctx, "/raw/"+key, sv); err != nil {
					return err
				}
				_, err := cl.Get(ctx, "/raw/"+key)
				return err
			}
		}},
		{"zookeeper", func(b *testing.B) (func(string) error, func(string) error) {
			srv := testenv.ZooKeeper(b)
			s, err := zookeeper.New(ctx, zookeeper.Config{Servers: srv.Servers(), Root: "/concurrent"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			conn, _, err := zk.Connect(srv.Servers(), 10*time.Second, zk.WithLogInfo(false))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(conn.Close)
			acl := zk.WorldACL(zk.PermAll)
			if _, err := conn.Create("/rawc", nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				b.Fatal(err)
			}
			for g := range callers {
				if _, err := conn.Create(fmt.Sprintf("/rawc/g%d", g), value, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
					b.Fatal(err)
				}
			}
			return regentPutGet(ctx, s, value), func(key string) error {
				if _, err := conn.Set("/rawc/"+key, value, -1); err != nil {
					return err
				}
				_, _, err := conn.Get("/rawc/" + key)
				return err
			}
		}},
		{"consul", func(b *testing.B) (func(string) error, func(string) error) {
			cs := testenv.Consul(b, testenv.ConsulOptions{})
			s, err := consul.New(ctx, consul.Config{Addresses: []string{cs.Addr}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			cl, err := api.NewClient(&api.Config{Address: cs.Addr})
			if err != nil {
				b.Fatal(err)
			}
			q := (&api.QueryOptions{}).WithContext(ctx)
			w := (&api.WriteOptions{}).WithContext(ctx)
			return regentPutGet(ctx, s, value), func(key string) error {
				if _, err := cl.KV().Put(&api.KVPair{Key: "rawc/" + key, Value: value}, w); err != nil {
					return err
				}
				_, _, err := cl.KV().Get("rawc/"+key, q)
				return err
			}
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			regent, raw := be.setup(b)
			for _, sd := range []side{{"regent", regent}, {"raw", raw}} {
				b.Run(sd.name, func(b *testing.B) {
					for g := range callers * 16 { // warm-up, unmeasured
						if err := sd.op(fmt.Sprintf("g%d", g%callers)); err != nil {
							b.Fatal(err)
						}
					}
					var next atomic.Int32
					b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						key := fmt.Sprintf("g%d", next.Add(1)%callers)
						for pb.Next() {
							if err := sd.op(key); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}

// regentPutGet is the op on a regent Store.
func regentPutGet(ctx context.Context, s kv.Store, value []byte) func(string) error {
	return func(key string) error {
		if err := s.Put(ctx, key, value, nil); err != nil {
			return err
		}
		_, err := s.Get(ctx, key, nil)
		return err
	}
}
