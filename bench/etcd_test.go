package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/etcd/embedded"
)

// BenchmarkEtcd compares regent's etcd driver with the raw clientv3 calls
// it is built on, against one embedded server (fsync on) in the same run.
// Keys and values are the same on both sides; regent's keys live under
// its default root "/", so "bench/x" is "/bench/x" for both.
func BenchmarkEtcd(b *testing.B) {
	ctx := context.Background()
	srv, err := embedded.Start(ctx)
	if err != nil {
		b.Fatalf("embedded.Start: %v", err)
	}
	defer func() { _ = srv.Close() }()
	raw, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		b.Fatalf("clientv3.New: %v", err)
	}
	defer func() { _ = raw.Close() }()
	store, err := etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		b.Fatalf("etcd.New: %v", err)
	}
	defer func() { _ = store.Close() }()

	value := []byte(strings.Repeat("v", 128))
	svalue := string(value)

	b.Run("Put", func(b *testing.B) {
		b.Run("regent", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := store.Put(ctx, "bench/put", value, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := raw.Put(ctx, "/bench/put", svalue); err != nil {
					b.Fatal(err)
				}
			}
		})
	})

	if _, err := raw.Put(ctx, "/bench/get", svalue); err != nil {
		b.Fatal(err)
	}
	b.Run("Get", func(b *testing.B) {
		b.Run("regent", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := store.Get(ctx, "bench/get", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := raw.Get(ctx, "/bench/get")
				if err != nil || len(resp.Kvs) != 1 {
					b.Fatal(err)
				}
			}
		})
	})

	for i := range 100 {
		if _, err := raw.Put(ctx, fmt.Sprintf("/bench/list/%03d", i), svalue); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("List100", func(b *testing.B) {
		b.Run("regent", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pairs, err := store.List(ctx, "bench/list", nil)
				if err != nil || len(pairs) != 100 {
					b.Fatal(len(pairs), err)
				}
			}
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := raw.Get(ctx, "/bench/list/", clientv3.WithPrefix())
				if err != nil || len(resp.Kvs) != 100 {
					b.Fatal(err)
				}
			}
		})
	})

	// WatchLatency: one op is a Put by a separate writer client and the
	// watcher receiving it; the custom metric is the time from the Put's
	// return to the receipt, the part a watcher implementation can add to.
	writer, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		b.Fatalf("clientv3.New: %v", err)
	}
	defer func() { _ = writer.Close() }()
	b.Run("WatchLatency", func(b *testing.B) {
		b.Run("regent", func(b *testing.B) {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ch, err := store.Watch(wctx, "bench/watch", nil)
			if err != nil {
				b.Fatal(err)
			}
			<-ch // current state; the watch is live once it arrives
			b.ReportAllocs()
			var tail time.Duration
			for b.Loop() {
				if _, err := writer.Put(ctx, "/bench/watch", svalue); err != nil {
					b.Fatal(err)
				}
				put := time.Now()
				if u := <-ch; u.Err != nil || u.Pair == nil {
					b.Fatalf("update %+v", u)
				}
				tail += time.Since(put)
			}
			b.ReportMetric(float64(tail.Nanoseconds())/float64(b.N), "ns-after-put/op")
		})
		b.Run("raw", func(b *testing.B) {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ch := raw.Watch(wctx, "/bench/watch", clientv3.WithCreatedNotify())
			<-ch // created
			b.ReportAllocs()
			var tail time.Duration
			for b.Loop() {
				if _, err := writer.Put(ctx, "/bench/watch", svalue); err != nil {
					b.Fatal(err)
				}
				put := time.Now()
				if resp := <-ch; resp.Err() != nil || len(resp.Events) != 1 {
					b.Fatalf("response %+v", resp)
				}
				tail += time.Since(put)
			}
			b.ReportMetric(float64(tail.Nanoseconds())/float64(b.N), "ns-after-put/op")
		})
	})
}

// BenchmarkEtcdPaired measures the same operations as BenchmarkEtcd, but
// alternates regent and raw op by op (in alternating order) within one
// loop, so that load from other processes on the machine hits both sides
// alike. It reports each side's mean and their ratio; ns/op is the pair.
func BenchmarkEtcdPaired(b *testing.B) {
	ctx := context.Background()
	srv, err := embedded.Start(ctx)
	if err != nil {
		b.Fatalf("embedded.Start: %v", err)
	}
	defer func() { _ = srv.Close() }()
	newRaw := func() *clientv3.Client {
		c, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
		if err != nil {
			b.Fatalf("clientv3.New: %v", err)
		}
		return c
	}
	raw, writer := newRaw(), newRaw()
	defer func() { _ = raw.Close() }()
	defer func() { _ = writer.Close() }()
	store, err := etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		b.Fatalf("etcd.New: %v", err)
	}
	defer func() { _ = store.Close() }()
	value := []byte(strings.Repeat("v", 128))
	svalue := string(value)
	if _, err := raw.Put(ctx, "/bench/get", svalue); err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		if _, err := raw.Put(ctx, fmt.Sprintf("/bench/list/%03d", i), svalue); err != nil {
			b.Fatal(err)
		}
	}
	check := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}

	b.Run("Put", func(b *testing.B) {
		paired(b,
			func() { check(store.Put(ctx, "bench/put", value, nil)) },
			func() { _, err := raw.Put(ctx, "/bench/put", svalue); check(err) })
	})
	b.Run("Get", func(b *testing.B) {
		paired(b,
			func() { _, err := store.Get(ctx, "bench/get", nil); check(err) },
			func() { _, err := raw.Get(ctx, "/bench/get"); check(err) })
	})
	b.Run("List100", func(b *testing.B) {
		paired(b,
			func() { _, err := store.List(ctx, "bench/list", nil); check(err) },
			func() { _, err := raw.Get(ctx, "/bench/list/", clientv3.WithPrefix()); check(err) })
	})
	b.Run("WatchLatency", func(b *testing.B) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rch, err := store.Watch(wctx, "bench/watch-regent", nil)
		check(err)
		<-rch
		wch := raw.Watch(wctx, "/bench/watch-raw", clientv3.WithCreatedNotify())
		<-wch
		paired(b,
			func() {
				_, err := writer.Put(ctx, "/bench/watch-regent", svalue)
				check(err)
				if u := <-rch; u.Err != nil {
					b.Fatal(u.Err)
				}
			},
			func() {
				_, err := writer.Put(ctx, "/bench/watch-raw", svalue)
				check(err)
				if resp := <-wch; resp.Err() != nil {
					b.Fatal(resp.Err())
				}
			})
	})
}

func paired(b *testing.B, regent, raw func()) {
	b.ReportAllocs()
	var tReg, tRaw time.Duration
	timed := func(f func(), sum *time.Duration) {
		start := time.Now()
		f()
		*sum += time.Since(start)
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			timed(regent, &tReg)
			timed(raw, &tRaw)
		} else {
			timed(raw, &tRaw)
			timed(regent, &tReg)
		}
	}
	b.ReportMetric(float64(tReg.Nanoseconds())/float64(b.N), "regent-ns/op")
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(tReg)/float64(tRaw), "regent/raw")
}
