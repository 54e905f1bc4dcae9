package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/consul"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/zookeeper"
)

// crowdStores is the number of Stores (clients) a crowd's candidates share.
const crowdStores = 4

// BenchmarkElectionCrowd measures graceful handover (the leader's Resign
// to the next OnStartedLeading) with n candidates on one election key,
// goroutines sharing crowdStores Stores, for n = 3 and n = 1000, and the
// server requests per handover where they can be counted: on ZooKeeper
// the packets the server received (mntr), on Consul the requests the
// clients sent (their HTTP transports). The goal is that neither grows
// with n: each waiter watches only its predecessor, or one shared watch.
// A handover's count runs until the resigned candidate has campaigned
// again (settle after the new leader starts), less the background
// (session renewals, pings) measured over a quiet window just before.
//
//	go test -run '^$' -bench BenchmarkElectionCrowd -benchtime 10x -timeout 30m
func BenchmarkElectionCrowd(b *testing.B) {
	ctx := context.Background()
	type backend struct {
		name string
		open func(b *testing.B) (dial func() kv.Store, requests func() int64)
	}
	backends := []backend{
		{"etcd", func(b *testing.B) (func() kv.Store, func() int64) {
			m := testenv.EtcdProcess(b)
			return func() kv.Store {
				s, err := etcd.New(ctx, etcd.Config{Endpoints: m.Endpoints(), DialTimeout: 5 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				return s
			}, nil
		}},
		{"zookeeper", func(b *testing.B) (func() kv.Store, func() int64) {
			srv := testenv.ZooKeeper(b)
			return func() kv.Store {
					s, err := zookeeper.New(ctx, zookeeper.Config{Servers: srv.Servers(), SessionTimeout: electionTTL})
					if err != nil {
						b.Fatal(err)
					}
					return s
				}, func() int64 {
					n, err := srv.Metric("zk_packets_received")
					if err != nil {
						b.Fatal(err)
					}
					return n
				}
		}},
		{"consul", func(b *testing.B) (func() kv.Store, func() int64) {
			cs := testenv.Consul(b, testenv.ConsulOptions{})
			var n atomic.Int64
			return func() kv.Store {
				cl, err := api.NewClient(&api.Config{Address: cs.Addr,
					HttpClient: &http.Client{Transport: countingTransport{cleanhttp.DefaultPooledTransport(), &n}}})
				if err != nil {
					b.Fatal(err)
				}
				s, err := consul.NewFromClient(cl, consul.Config{SessionTTLMin: time.Second})
				if err != nil {
					b.Fatal(err)
				}
				return s
			}, n.Load
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			dial, requests := be.open(b)
			stores := make([]kv.Store, crowdStores)
			for i := range stores {
				stores[i] = dial()
				b.Cleanup(func() { _ = stores[i].Close() })
			}
			for _, n := range []int{3, 1000} {
				b.Run(fmt.Sprint(n), func(b *testing.B) { benchCrowd(b, ctx, stores, requests, n) })
			}
		})
	}
}

func benchCrowd(b *testing.B, ctx context.Context, stores []kv.Store, requests func() int64, n int) {
	key := electionKey(b)
	started := make(chan leadStart, n)
	electors := map[string]*election.Elector{}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, n)
	defer func() {
		cancel()
		for range n {
			<-done
		}
	}()
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		e, err := election.New(ctx, stores[i%len(stores)], election.Config{Key: key, Identity: id, TTL: electionTTL,
			Callbacks: election.Callbacks{OnStartedLeading: func(ctx context.Context) {
				started <- leadStart{id, time.Now()}
				<-ctx.Done()
			}}})
		if err != nil {
			b.Fatal(err)
		}
		electors[id] = e
		go func() {
			defer func() { done <- struct{}{} }()
			_ = e.Run(rctx)
		}()
	}
	leader := waitStart(b, started, 2*time.Minute).id
	// Every candidate campaigns before the first handover is timed: the
	// crowd is queued (or watching) as in a running system.
	time.Sleep(settle + time.Duration(n)*time.Millisecond)
	var samples []time.Duration
	var reqs, idlePerSec float64
	for range b.N {
		// The background (session renewals, pings) over a quiet window,
		// taken off the handover's count.
		var idle float64
		if requests != nil {
			i0, q0 := requests(), time.Now()
			time.Sleep(settle)
			idle = float64(requests()-i0) / time.Since(q0).Seconds()
			idlePerSec += idle
		}
		var r0 int64
		if requests != nil {
			r0 = requests()
		}
		t0 := time.Now()
		go func(e *election.Elector) { _ = e.Resign(ctx) }(electors[leader])
		next := waitStart(b, started, time.Minute)
		samples = append(samples, next.at.Sub(t0))
		leader = next.id
		time.Sleep(settle) // the resigned candidate queues again
		if requests != nil {
			reqs += max(0, float64(requests()-r0)-idle*time.Since(t0).Seconds())
		}
	}
	report(b, samples, "handover")
	if requests != nil {
		b.ReportMetric(reqs/float64(b.N), "requests/handover")
		b.ReportMetric(idlePerSec/float64(b.N), "idle-requests/s")
	}
}
