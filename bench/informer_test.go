package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/consul"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/etcd/embedded"
	"github.com/regentkv/regent/kv/zookeeper"
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
	// rawSyncWatched, where set, is rawSync arming on every node the
	// watches a raw client needs to follow the prefix afterwards
	// (ZooKeeper: a data and a child watch per znode): the like-for-like
	// baseline where a list alone cannot be followed.
	rawSyncWatched func(ctx context.Context, prefix string) (map[string][]byte, error)
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
				if err := <-done; !errors.Is(err, context.Canceled) {
					b.Fatalf("Run: %v", err)
				}
				b.StartTimer()
			}
			b.ReportMetric(perObj, "heap-B/obj")
			b.ReportMetric(perObj-infValueSize, "overhead-B/obj")
		})
		rawSync := func(sync func(ctx context.Context, prefix string) (map[string][]byte, error)) func(b *testing.B) {
			return func(b *testing.B) {
				var perObj float64
				for b.Loop() {
					base := heapInUse()
					m, err := sync(ctx, "infbig")
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
			}
		}
		b.Run("raw", rawSync(side.rawSync))
		if side.rawSyncWatched != nil {
			b.Run("rawwatch", rawSync(side.rawSyncWatched))
		}
	})
	latency := func(b *testing.B, prefix string) {
		b.Run("regent", func(b *testing.B) {
			got := make(chan []byte, 1)
			inf, err := informer.New(side.store, informer.Config[[]byte]{Prefix: prefix, Decode: identity})
			if err != nil {
				b.Fatal(err)
			}
			send := func(v []byte) { offerLatest(got, v) }
			reg, _ := inf.AddEventHandler(informer.Handler[[]byte]{
				OnAdd:    func(_ string, v []byte, initial bool) { send(v) },
				OnUpdate: func(_ string, _, v []byte) { send(v) },
			})
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- inf.Run(rctx) }()
			defer func() {
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					b.Errorf("Run: %v", err)
				}
			}()
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

// offerLatest puts v in ch (capacity 1) without blocking, replacing a value
// nobody took: the reader always finds the latest, so a stale value never
// hides the one it waits for.
func offerLatest(ch chan []byte, v []byte) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
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
	wait:
		for {
			select {
			case w := <-got:
				if string(w[:12]) == string(v[:12]) {
					break wait
				}
			case <-time.After(30 * time.Second):
				b.Fatalf("no event for the put of %s after 30s", key)
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
	b.Logf("wrote %d keys in %v", n, time.Since(start))
}

func infKey(prefix string, i int) string { return fmt.Sprintf("%s/k%012d", prefix, i) }

// BenchmarkInformer compares the informer with the raw client doing the
// same job: a paginated list into a map (Sync), a watch (latencies).
func BenchmarkInformer(b *testing.B) {
	b.Run("etcd", benchInformerEtcd)
	b.Run("zookeeper", benchInformerZooKeeper)
	b.Run("consul", benchInformerConsul)
}

var etcdInformerOnce struct {
	sync.Once
	srv *embedded.Server
	raw *clientv3.Client
	err error
}

func benchInformerEtcd(b *testing.B) {
	b.Run("Sync1M", benchSync1M)
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
						offerLatest(out, ev.Kv.Value)
					}
				}
			}()
			return out, nil
		},
	})
}

// informerZooKeeper benchmarks the informer on a ZooKeeper of its own. The
// big prefix has 10,000 keys: ZooKeeper holds its whole tree in the JVM
// heap, and 100 MB of 1 KiB znodes did not fit the test server's defaults
// in the time available. Raw sides read regent's own znodes: Children then
// concurrent Gets (8 at a time) for the list, a re-armed GetW on the
// changed key for the latencies (a raw client has no cheaper way to watch
// one key among 10,000).
func benchInformerZooKeeper(b *testing.B) {
	const n = 10_000
	srv := testenv.ZooKeeper(b)
	ctx := context.Background()
	store, err := zookeeper.New(ctx, zookeeper.Config{Servers: srv.Servers(), Root: "/infbench"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	raw, _, err := zk.Connect(srv.Servers(), 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	fillConcurrently(b, n, 100, 8, func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			if err := store.Put(ctx, infKey("infbig", i), infValue(i), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err := store.Put(ctx, infKey("inflat", 7), infValue(7), nil); err != nil {
		b.Fatal(err)
	}
	const root = "/infbench/"
	// rawList reads the children of prefix, then their data with 8
	// concurrent readers. With watch, it arms what a raw client needs to
	// follow the prefix after the list: a child watch on the prefix and a
	// data and a child watch on every znode below (go-zookeeper v1.0.4 has
	// no persistent recursive watch).
	rawList := func(prefix string, watch bool) (map[string][]byte, error) {
		var names []string
		var err error
		if watch {
			names, _, _, err = raw.ChildrenW(root + prefix)
		} else {
			names, _, err = raw.Children(root + prefix)
		}
		if err != nil {
			return nil, err
		}
		out := make(map[string][]byte, len(names))
		var mu sync.Mutex
		var firstErr error
		var wg sync.WaitGroup
		work := make(chan string)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for name := range work {
					p := root + prefix + "/" + name
					var data []byte
					var err error
					if watch {
						data, _, _, err = raw.GetW(p)
						if err == nil {
							_, _, _, err = raw.ChildrenW(p)
						}
					} else {
						data, _, err = raw.Get(p)
					}
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					if len(data) > 0 {
						out[prefix+"/"+name] = data[1:]
					}
					mu.Unlock()
				}
			}()
		}
		for _, name := range names {
			work <- name
		}
		close(work)
		wg.Wait()
		return out, firstErr
	}
	benchInformer(b, informerSide{
		store: store,
		keys:  n,
		rawSync: func(_ context.Context, prefix string) (map[string][]byte, error) {
			return rawList(prefix, false)
		},
		rawSyncWatched: func(_ context.Context, prefix string) (map[string][]byte, error) {
			return rawList(prefix, true)
		},
		rawPut: func(_ context.Context, key string, value []byte) error {
			_, err := raw.Set(root+key, append([]byte{1}, value...), -1)
			return err
		},
		rawWatch: func(ctx context.Context, prefix string) (<-chan []byte, error) {
			path := root + infKey(prefix, 7)
			_, _, ev, err := raw.GetW(path)
			if err != nil {
				return nil, err
			}
			out := make(chan []byte, 1)
			go func() {
				for {
					select {
					case <-ev:
					case <-ctx.Done():
						return
					}
					var data []byte
					var err error
					data, _, ev, err = raw.GetW(path)
					if err != nil {
						return
					}
					offerLatest(out, data[1:])
				}
			}()
			return out, nil
		},
	})
}

// informerConsul benchmarks the informer on a Consul agent of its own, with
// 10,000 keys in the big prefix (a dev agent holds them in memory and
// answers a list in one JSON response). Raw sides: one consistent
// recursive List for the sync (Consul has no pagination), a blocking Get
// on the changed key for the latencies.
func benchInformerConsul(b *testing.B) {
	const n = 10_000
	srv := testenv.Consul(b, testenv.ConsulOptions{})
	ctx := context.Background()
	store, err := consul.New(ctx, consul.Config{Addresses: []string{srv.Addr}, Root: "infbench"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	rawc, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		b.Fatal(err)
	}
	rkv := rawc.KV()
	fillConcurrently(b, n, 64, 8, func(lo, hi int) error {
		ops := make(api.KVTxnOps, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ops = append(ops, &api.KVTxnOp{Verb: api.KVSet, Key: "infbench/" + infKey("infbig", i), Value: infValue(i)})
		}
		ok, resp, _, err := rkv.Txn(ops, nil)
		if err == nil && !ok {
			err = fmt.Errorf("txn rolled back: %v", resp.Errors)
		}
		return err
	})
	if err := store.Put(ctx, infKey("inflat", 7), infValue(7), nil); err != nil {
		b.Fatal(err)
	}
	benchInformer(b, informerSide{
		store: store,
		keys:  n,
		rawSync: func(ctx context.Context, prefix string) (map[string][]byte, error) {
			pairs, _, err := rkv.List("infbench/"+prefix+"/", (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
			if err != nil {
				return nil, err
			}
			out := make(map[string][]byte, len(pairs))
			for _, p := range pairs {
				out[p.Key] = p.Value
			}
			return out, nil
		},
		rawPut: func(_ context.Context, key string, value []byte) error {
			_, err := rkv.Put(&api.KVPair{Key: "infbench/" + key, Value: value}, nil)
			return err
		},
		rawWatch: func(ctx context.Context, prefix string) (<-chan []byte, error) {
			key := "infbench/" + infKey(prefix, 7)
			_, meta, err := rkv.Get(key, nil)
			if err != nil {
				return nil, err
			}
			out := make(chan []byte, 1)
			go func() {
				idx := meta.LastIndex
				for {
					p, meta, err := rkv.Get(key, (&api.QueryOptions{WaitIndex: idx}).WithContext(ctx))
					if err != nil {
						return
					}
					if meta.LastIndex > idx && p != nil {
						offerLatest(out, p.Value)
					}
					idx = meta.LastIndex
				}
			}()
			return out, nil
		},
	})
}
