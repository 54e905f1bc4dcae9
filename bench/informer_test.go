package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/etcd/embedded"
)

// infValueSize is the size of every value in the informer benchmarks.
const infValueSize = 1024

func infValue(i int) []byte {
	v := make([]byte, infValueSize)
	copy(v, fmt.Sprintf("%012d", i))
	for j := 12; j < len(v); j++ {
		v[j] = 'x'
	}
	return v
}

func identity(_ string, v []byte) ([]byte, error) { return v, nil }

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// latencies collects one sample per iteration and reports the median.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(s[len(s)*9/10].Microseconds()), "p90-µs")
}

// informerSide is what each backend gives the informer benchmarks.
type informerSide struct {
	store kv.Store
	// keys is the size of the big prefix "infbig" (100,000 where it can be
	// written in time).
	keys int
	// rawSync lists prefix with the raw client, page by page, into a map.
	rawSync func(ctx context.Context, prefix string) (map[string][]byte, error)
	// rawPut writes key (without regent's root) with the raw client.
	rawPut func(ctx context.Context, key string, value []byte) error
	// rawWatch follows every change below prefix with the raw client and
	// sends the changed values.
	rawWatch func(ctx context.Context, prefix string) (<-chan []byte, error)
}

// benchInformer runs Sync100k, EventLatency and ChangeIn100k on one backend.
func benchInformer(b *testing.B, side informerSide) {
	ctx := context.Background()
	b.Run(fmt.Sprintf("Sync%dk", side.keys/1000), func(b *testing.B) {
		b.Run("regent", func(b *testing.B) {
			var perObj float64
			for b.Loop() {
				base := heapInUse()
				inf, err := informer.New(side.store, informer.Config[[]byte]{Prefix: "infbig", Decode: identity})
				if err != nil {
					b.Fatal(err)
				}
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- inf.Run(rctx) }()
				if err := inf.WaitForCacheSync(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if n := inf.Len(); n != side.keys {
					b.Fatalf("cached %d keys, want %d", n, side.keys)
				}
				perObj = float64(heapInUse()-base) / float64(side.keys)
				runtime.KeepAlive(inf)
				cancel()
				<-done
				b.StartTimer()
			}
			b.ReportMetric(perObj, "heap-B/obj")
			b.ReportMetric(perObj-infValueSize, "overhead-B/obj")
		})
		b.Run("raw", func(b *testing.B) {
			var perObj float64
			for b.Loop() {
				base := heapInUse()
				m, err := side.rawSync(ctx, "infbig")
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if len(m) != side.keys {
					b.Fatalf("listed %d keys, want %d", len(m), side.keys)
				}
				perObj = float64(heapInUse()-base) / float64(side.keys)
				runtime.KeepAlive(m)
				b.StartTimer()
			}
			b.ReportMetric(perObj, "heap-B/obj")
			b.ReportMetric(perObj-infValueSize, "overhead-B/obj")
		})
	})
	latency := func(b *testing.B, prefix string) {
		b.Run("regent", func(b *testing.B) {
			got := make(chan []byte, 1)
			inf, err := informer.New(side.store, informer.Config[[]byte]{Prefix: prefix, Decode: identity})
			if err != nil {
				b.Fatal(err)
			}
			send := func(v []byte) {
				select {
				case got <- v:
				default:
				}
			}
			reg, _ := inf.AddEventHandler(informer.Handler[[]byte]{
				OnAdd:    func(_ string, v []byte, initial bool) { send(v) },
				OnUpdate: func(_ string, _, v []byte) { send(v) },
			})
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- inf.Run(rctx) }()
			defer func() { cancel(); <-done }()
			if err := inf.WaitForCacheSync(ctx); err != nil {
				b.Fatal(err)
			}
			<-reg.Synced()
			runLatency(b, side, prefix, got)
		})
		b.Run("raw", func(b *testing.B) {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ch, err := side.rawWatch(wctx, prefix)
			if err != nil {
				b.Fatal(err)
			}
			runLatency(b, side, prefix, ch)
		})
	}
	b.Run("EventLatency", func(b *testing.B) { latency(b, "inflat") })
	b.Run(fmt.Sprintf("ChangeIn%dk", side.keys/1000), func(b *testing.B) { latency(b, "infbig") })
}

// runLatency times put -> delivery of one changed value per iteration.
func runLatency(b *testing.B, side informerSide, prefix string, got <-chan []byte) {
	ctx := context.Background()
	key := prefix + "/k000000000007"
	var lat latencies
	for i := 0; b.Loop(); i++ {
		v := infValue(1_000_000 + i)
		for len(got) > 0 {
			<-got
		}
		start := time.Now()
		if err := side.rawPut(ctx, key, v); err != nil {
			b.Fatal(err)
		}
		for w := range got {
			if string(w[:12]) == string(v[:12]) {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	lat.report(b)
}

// fillConcurrently writes n keys below prefix with workers goroutines, each
// calling write for a batch of consecutive indexes.
func fillConcurrently(b *testing.B, n, batch, workers int, write func(lo, hi int) error) {
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				if err := write(lo, min(lo+batch, n)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() {
		defer close(next)
		for lo := 0; lo < n; lo += batch {
			select {
			case next <- lo:
			case <-time.After(5 * time.Minute):
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("fill: %v", err)
	}
	b.Logf("wrote %d keys of %d bytes in %v", n, infValueSize, time.Since(start))
}

func infKey(prefix string, i int) string { return fmt.Sprintf("%s/k%012d", prefix, i) }

// BenchmarkInformer compares the informer with the raw client doing the
// same job: a paginated list into a map (Sync), a watch (latencies).
func BenchmarkInformer(b *testing.B) {
	b.Run("etcd", benchInformerEtcd)
}

var etcdInformerOnce struct {
	sync.Once
	srv *embedded.Server
	raw *clientv3.Client
	err error
}

func benchInformerEtcd(b *testing.B) {
	ctx := context.Background()
	const n = 100_000
	// One server per process, filled once: writing 100 MB takes a while.
	o := &etcdInformerOnce
	o.Do(func() {
		o.srv, o.err = embedded.Start(ctx)
		if o.err != nil {
			return
		}
		o.raw, o.err = clientv3.New(clientv3.Config{Endpoints: o.srv.Endpoints(), DialTimeout: 5 * time.Second})
		if o.err != nil {
			return
		}
		fillConcurrently(b, n, 128, 8, func(lo, hi int) error {
			ops := make([]clientv3.Op, 0, hi-lo)
			for i := lo; i < hi; i++ {
				ops = append(ops, clientv3.OpPut("/"+infKey("infbig", i), string(infValue(i))))
			}
			_, err := o.raw.Txn(ctx).Then(ops...).Commit()
			return err
		})
		_, o.err = o.raw.Put(ctx, "/"+infKey("inflat", 7), string(infValue(7)))
	})
	if o.err != nil {
		b.Fatal(o.err)
	}
	store, err := etcd.New(ctx, etcd.Config{Endpoints: o.srv.Endpoints()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	raw := o.raw
	benchInformer(b, informerSide{
		store: store,
		keys:  n,
		rawSync: func(ctx context.Context, prefix string) (map[string][]byte, error) {
			out := make(map[string][]byte)
			key, end := "/"+prefix+"/", clientv3.GetPrefixRangeEnd("/"+prefix+"/")
			var rev int64
			for {
				opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(1000)}
				if rev != 0 {
					opts = append(opts, clientv3.WithRev(rev))
				}
				resp, err := raw.Get(ctx, key, opts...)
				if err != nil {
					return nil, err
				}
				rev = resp.Header.Revision
				for _, kv := range resp.Kvs {
					out[string(kv.Key)] = kv.Value
				}
				if !resp.More {
					return out, nil
				}
				key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
			}
		},
		rawPut: func(ctx context.Context, key string, value []byte) error {
			_, err := raw.Put(ctx, "/"+key, string(value))
			return err
		},
		rawWatch: func(ctx context.Context, prefix string) (<-chan []byte, error) {
			wch := raw.Watch(clientv3.WithRequireLeader(ctx), "/"+prefix+"/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
			if resp := <-wch; resp.Err() != nil {
				return nil, resp.Err()
			}
			out := make(chan []byte, 1)
			go func() {
				for resp := range wch {
					for _, ev := range resp.Events {
						select {
						case out <- ev.Kv.Value:
						default:
						}
					}
				}
			}()
			return out, nil
		},
	})
}
