package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv/etcd"
)

// sync1MValueSize is the size of every value of BenchmarkInformer/etcd/Sync1M.
const sync1MValueSize = 100

// benchSync1M is BenchmarkInformer/etcd/Sync1M: an informer of 1,000,000
// keys of 100 bytes on etcd (a server in a process of its own, so the
// heap is the client's), against the raw baseline, one unpaged read into
// a map of the same objects. Reported: the sync time (ns/op), the heap per
// object after a GC and its overhead over the value, and, for regent, the
// process's resident memory once synced.
//
//	go test -run '^$' -bench 'BenchmarkInformer/etcd/Sync1M' -benchtime 1x -count 3 -timeout 30m
func benchSync1M(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	m := testenv.EtcdProcess(b)
	raw, err := clientv3.New(clientv3.Config{Endpoints: m.Endpoints(), DialTimeout: 5 * time.Second, MaxCallRecvMsgSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = raw.Close() })
	value := func(i int) string {
		v := fmt.Sprintf("%012d", i)
		return v + strings.Repeat("x", sync1MValueSize-len(v))
	}
	fillConcurrently(b, n, 128, 8, func(lo, hi int) error {
		ops := make([]clientv3.Op, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ops = append(ops, clientv3.OpPut("/"+infKey("sync1m", i), value(i)))
		}
		_, err := raw.Txn(ctx).Then(ops...).Commit()
		return err
	})
	store, err := etcd.New(ctx, etcd.Config{Endpoints: m.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	b.Run("regent", func(b *testing.B) {
		var perObj, rss float64
		for b.Loop() {
			base := heapInUse()
			inf, err := informer.New(store, informer.Config[[]byte]{Prefix: "sync1m", Decode: identity})
			if err != nil {
				b.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- inf.Run(rctx) }()
			if err := inf.WaitForCacheSync(ctx); err != nil {
				b.Fatal(err)
			}
			if got := inf.Len(); got != n {
				b.Fatalf("cached %d keys, want %d", got, n)
			}
			perObj = float64(heapInUse()-base) / n
			rss = residentMB()
			runtime.KeepAlive(inf)
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				b.Fatalf("Run: %v", err)
			}
		}
		b.ReportMetric(perObj, "heap-B/obj")
		b.ReportMetric(perObj-sync1MValueSize, "overhead-B/obj")
		b.ReportMetric(rss, "rss-MB")
	})
	b.Run("raw", func(b *testing.B) {
		var perObj float64
		for b.Loop() {
			base := heapInUse()
			// One unpaged read: what a raw client does fastest (pages of
			// 1,000 keys take minutes here, see snapshotPage in kv/etcd).
			resp, err := raw.Get(ctx, "/sync1m/", clientv3.WithPrefix())
			if err != nil {
				b.Fatal(err)
			}
			out := make(map[string][]byte, len(resp.Kvs))
			for _, kv := range resp.Kvs {
				out[string(kv.Key)] = kv.Value
			}
			resp = nil
			if len(out) != n {
				b.Fatalf("listed %d keys, want %d", len(out), n)
			}
			perObj = float64(heapInUse()-base) / n
			runtime.KeepAlive(out)
		}
		b.ReportMetric(perObj, "heap-B/obj")
		b.ReportMetric(perObj-sync1MValueSize, "overhead-B/obj")
	})
}

// residentMB is the process's resident set, from /proc (0 elsewhere).
func residentMB() float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
