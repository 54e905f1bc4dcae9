package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/consul"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/zookeeper"
)

// BenchmarkWatches opens n Watches of n existing keys on one regent Store
// (the server in a process of its own, so the heap is the client's), waits
// for each one's first update, then changes random watched keys at
// watchChangeRate for watchChangeFor and waits for every change to be
// delivered. Reported per backend and n: the client's heap, goroutine
// stacks and goroutines per watch (mem-B/watch is heap plus stacks), the put-to-delivery median, and, where the client's
// requests can be counted (Consul, through its HTTP transport), requests
// per second while the changes run (the benchmark's Puts included), and
// the time to open one watch (Watch and its first update, n in a row).
// ns/op is the whole round, changes included.
//
//	go test -run '^$' -bench BenchmarkWatches -benchtime 1x -count 3 -timeout 30m
func BenchmarkWatches(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type backend struct {
		name string
		open func(b *testing.B) (kv.Store, *atomic.Int64) // requests counter, or nil
	}
	backends := []backend{
		{"etcd", func(b *testing.B) (kv.Store, *atomic.Int64) {
			m := testenv.EtcdProcess(b)
			s, err := etcd.New(ctx, etcd.Config{Endpoints: m.Endpoints(), DialTimeout: 5 * time.Second, Root: "watches"})
			if err != nil {
				b.Fatal(err)
			}
			return s, nil
		}},
		{"zookeeper", func(b *testing.B) (kv.Store, *atomic.Int64) {
			srv := testenv.ZooKeeper(b)
			s, err := zookeeper.New(ctx, zookeeper.Config{Servers: srv.Servers(), Root: "/watches"})
			if err != nil {
				b.Fatal(err)
			}
			return s, nil
		}},
		{"consul", func(b *testing.B) (kv.Store, *atomic.Int64) {
			cs := testenv.Consul(b, testenv.ConsulOptions{})
			var n atomic.Int64
			cl, err := api.NewClient(&api.Config{Address: cs.Addr,
				HttpClient: &http.Client{Transport: countingTransport{cleanhttp.DefaultPooledTransport(), &n}}})
			if err != nil {
				b.Fatal(err)
			}
			s, err := consul.NewFromClient(cl, consul.Config{Root: "watches"})
			if err != nil {
				b.Fatal(err)
			}
			return s, &n
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s, requests := be.open(b)
			b.Cleanup(func() { _ = s.Close() })
			for _, n := range []int{100, 10000} {
				b.Run(fmt.Sprint(n), func(b *testing.B) {
					benchWatches(b, ctx, s, requests, n)
				})
			}
		})
	}
}

const (
	watchChangeRate = 200 // changes per second
	watchChangeFor  = 3 * time.Second
)

func benchWatches(b *testing.B, ctx context.Context, s kv.Store, requests *atomic.Int64, n int) {
	key := func(i int) string { return fmt.Sprintf("w%d/k%06d", n, i) }
	for i := range n {
		if err := s.Put(ctx, key(i), []byte("0"), nil); err != nil {
			b.Fatal(err)
		}
	}
	var heapPer, stackPer, goPer, p50, reqPerSec, openPer float64
	for b.Loop() {
		wctx, stop := context.WithCancel(ctx)
		base, stack0, g0 := heapInUse(), stackInUse(), runtime.NumGoroutine()
		chans := make([]<-chan kv.KeyUpdate, n)
		opening := time.Now()
		for i := range n {
			ch, err := s.Watch(wctx, key(i), nil)
			if err != nil {
				b.Fatalf("watch %d of %d: %v", i, n, err)
			}
			if u := <-ch; u.Err != nil {
				b.Fatalf("watch %d of %d: first update: %v", i, n, u.Err)
			}
			chans[i] = ch
		}
		openPer = float64(time.Since(opening).Microseconds()) / float64(n)
		heapPer = float64(heapInUse()-base) / float64(n)
		stackPer = float64(stackInUse()-stack0) / float64(n)
		goPer = float64(runtime.NumGoroutine()-g0) / float64(n)

		// Changes: each one a new value of a random key, timed from just
		// before its Put to its delivery on that key's watch.
		type change struct {
			at    time.Time
			value string
		}
		var lats latencies
		delivered := make(chan time.Duration, watchChangeRate*int(watchChangeFor/time.Second)+1)
		expect := make([]atomic.Pointer[change], n)
		for i, ch := range chans {
			go func() {
				for u := range ch {
					if u.Err != nil || u.Pair == nil {
						continue
					}
					if c := expect[i].Load(); c != nil && string(u.Pair.Value) == c.value && expect[i].CompareAndSwap(c, nil) {
						delivered <- time.Since(c.at)
					}
				}
			}()
		}
		var r0 int64
		if requests != nil {
			r0 = requests.Load()
		}
		began := time.Now()
		tick := time.NewTicker(time.Second / watchChangeRate)
		sent := 0
		for time.Since(began) < watchChangeFor {
			<-tick.C
			i := rand.IntN(n)
			if expect[i].Load() != nil {
				continue // its last change is still on its way
			}
			v := fmt.Sprint(sent + 1)
			expect[i].Store(&change{at: time.Now(), value: v})
			if err := s.Put(ctx, key(i), []byte(v), nil); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		tick.Stop()
		elapsed := time.Since(began)
		deadline := time.After(30 * time.Second)
		for range sent {
			select {
			case d := <-delivered:
				lats = append(lats, d)
			case <-deadline:
				b.Fatalf("%d of %d changes delivered within 30s", len(lats), sent)
			}
		}
		if requests != nil {
			reqPerSec = float64(requests.Load()-r0) / elapsed.Seconds()
		}
		p50 = float64(median(lats).Microseconds())
		stop()
	}
	b.ReportMetric(heapPer, "heap-B/watch")
	b.ReportMetric(stackPer, "stack-B/watch")
	b.ReportMetric(heapPer+stackPer, "mem-B/watch")
	b.ReportMetric(goPer, "goroutines/watch")
	b.ReportMetric(p50, "change-p50-µs")
	b.ReportMetric(openPer, "open-µs/watch")
	if requests != nil {
		b.ReportMetric(reqPerSec, "requests/s")
	}
}

// stackInUse is the memory the goroutines' stacks hold.
func stackInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// countingTransport counts the requests a client sends.
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(r)
}
