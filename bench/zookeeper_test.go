package bench

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/zookeeper"
)

// zkBench holds one regent Store and one raw go-zookeeper connection on
// the same server, with the same data laid out for both: a key "k", 100
// keys under "list", and a watched key "w" on each side.
type zkBench struct {
	b      *testing.B
	ctx    context.Context
	store  *zookeeper.Store
	raw    *zk.Conn
	writer *zk.Conn // writes the watched keys for both sides
	value  []byte

	watch  <-chan kv.KeyUpdate
	rawW   <-chan zk.Event
	seqReg int
	seqRaw int
}

func newZKBench(b *testing.B) *zkBench {
	srv := testenv.ZooKeeper(b)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	// A cancellable ctx, as callers use: the driver then runs each call
	// beside the caller so that it can return when ctx ends (go-zookeeper
	// takes no ctx); with context.Background() it calls directly.
	z := &zkBench{b: b, ctx: ctx, value: []byte("a value of some thirty-two bytes")}
	var err error
	if z.store, err = zookeeper.New(ctx, zookeeper.Config{Servers: srv.Servers(), Root: "/bench"}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = z.store.Close() })
	for _, c := range []**zk.Conn{&z.raw, &z.writer} {
		conn, _, err := zk.Connect(srv.Servers(), 10*time.Second, zk.WithLogInfo(false))
		if err != nil {
			b.Fatal(err)
		}
		*c = conn
		b.Cleanup(conn.Close)
	}
	acl := zk.WorldACL(zk.PermAll)
	for _, p := range []string{"/raw", "/raw/k", "/raw/list", "/raw/w"} {
		if _, err := z.raw.Create(p, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			b.Fatal(err)
		}
	}
	z.check(z.store.Put(ctx, "k", z.value, nil))
	z.check(z.store.Put(ctx, "w", []byte("0"), nil))
	for i := range 100 {
		k := "list/" + strconv.Itoa(i)
		z.check(z.store.Put(ctx, k, z.value, nil))
		if _, err := z.raw.Create("/raw/"+k, z.value, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			b.Fatal(err)
		}
	}
	if z.watch, err = z.store.Watch(ctx, "w", nil); err != nil {
		b.Fatal(err)
	}
	<-z.watch // the current state
	if _, _, z.rawW, err = z.raw.GetW("/raw/w"); err != nil {
		b.Fatal(err)
	}
	return z
}

func (z *zkBench) check(err error) {
	if err != nil {
		z.b.Fatal(err)
	}
}

func (z *zkBench) putRegent() { z.check(z.store.Put(z.ctx, "k", z.value, nil)) }

func (z *zkBench) putRaw() {
	_, err := z.raw.Set("/raw/k", z.value, -1)
	z.check(err)
}

func (z *zkBench) getRegent() {
	_, err := z.store.Get(z.ctx, "k", nil)
	z.check(err)
}

func (z *zkBench) getRaw() {
	_, _, err := z.raw.Get("/raw/k")
	z.check(err)
}

// getConsistentRegent is a Consistent Get: a read barrier (a check-only
// multi through the quorum, shared by concurrent callers), then the read.
func (z *zkBench) getConsistentRegent() {
	_, err := z.store.Get(z.ctx, "k", &kv.ReadOptions{Consistent: true})
	z.check(err)
}

// getSyncRaw is what a go-zookeeper user writes for a fresh read: sync,
// then get (cheaper, and not linearizable on 3.8: see kv/zookeeper's
// read barrier).
func (z *zkBench) getSyncRaw() {
	_, err := z.raw.Sync("/raw/k")
	z.check(err)
	_, _, err = z.raw.Get("/raw/k")
	z.check(err)
}

func (z *zkBench) listRegent() {
	ps, err := z.store.List(z.ctx, "list", nil)
	z.check(err)
	if len(ps) != 100 {
		z.b.Fatalf("List: %d pairs, want 100", len(ps))
	}
}

// listRaw is what a go-zookeeper user writes: Children, then each Get.
func (z *zkBench) listRaw() {
	names, _, err := z.raw.Children("/raw/list")
	z.check(err)
	if len(names) != 100 {
		z.b.Fatalf("Children: %d, want 100", len(names))
	}
	for _, n := range names {
		_, _, err := z.raw.Get("/raw/list/" + n)
		z.check(err)
	}
}

// watchRegent: the writer sets "w", regent's Watch delivers the value.
func (z *zkBench) watchRegent() {
	z.seqReg++
	want := strconv.Itoa(z.seqReg)
	// regent's layout: a marker byte, then the value.
	_, err := z.writer.Set("/bench/w", append([]byte{1}, want...), -1)
	z.check(err)
	for u := range z.watch {
		z.check(u.Err)
		if u.Pair != nil && string(u.Pair.Value) == want {
			return
		}
	}
	z.b.Fatal("watch closed")
}

// watchRaw: the writer sets "w"; the event arrives, and GetW re-arms the
// one-shot watch and reads the value, as any watcher that wants the value
// must.
func (z *zkBench) watchRaw() {
	z.seqRaw++
	want := strconv.Itoa(z.seqRaw)
	_, err := z.writer.Set("/raw/w", []byte(want), -1)
	z.check(err)
	for {
		<-z.rawW
		var data []byte
		data, _, z.rawW, err = z.raw.GetW("/raw/w")
		z.check(err)
		if string(data) == want {
			return
		}
	}
}

// BenchmarkZookeeper compares the regent driver with the raw go-zookeeper
// client on the same server in the same run.
func BenchmarkZookeeper(b *testing.B) {
	z := newZKBench(b)
	for _, op := range []struct {
		name        string
		regent, raw func()
	}{
		{"Put", z.putRegent, z.putRaw},
		{"Get", z.getRegent, z.getRaw},
		{"GetConsistent", z.getConsistentRegent, z.getSyncRaw},
		{"List100", z.listRegent, z.listRaw},
		{"WatchLatency", z.watchRegent, z.watchRaw},
	} {
		b.Run(op.name+"/regent", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				op.regent()
			}
		})
		b.Run(op.name+"/raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				op.raw()
			}
		})
	}
}

// BenchmarkZookeeperConsistentParallel is Consistent Gets from
// GOMAXPROCS x 8 goroutines on one Store: concurrent reads share one read
// barrier, so a barrier's cost is spread over every read that joined it.
// The raw side syncs and reads on one connection per goroutine's call.
func BenchmarkZookeeperConsistentParallel(b *testing.B) {
	z := newZKBench(b)
	for _, op := range []struct {
		name string
		fn   func() error
	}{
		{"regent", func() error {
			_, err := z.store.Get(z.ctx, "k", &kv.ReadOptions{Consistent: true})
			return err
		}},
		{"raw-sync", func() error {
			if _, err := z.raw.Sync("/raw/k"); err != nil {
				return err
			}
			_, _, err := z.raw.Get("/raw/k")
			return err
		}},
	} {
		b.Run(op.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op.fn(); err != nil {
						b.Error(err) // not Fatal: this is not the benchmark's goroutine
						return
					}
				}
			})
		})
	}
}

// BenchmarkZookeeperPaired runs the same operations, alternating regent
// and raw op by op (in alternating order) in one loop, so that load from
// other processes hits both sides alike. ns/op is the pair; the metrics
// give each side's mean and their ratio.
func BenchmarkZookeeperPaired(b *testing.B) {
	z := newZKBench(b)
	for _, op := range []struct {
		name        string
		regent, raw func()
	}{
		{"Put", z.putRegent, z.putRaw},
		{"Get", z.getRegent, z.getRaw},
		{"List100", z.listRegent, z.listRaw},
		{"WatchLatency", z.watchRegent, z.watchRaw},
	} {
		b.Run(op.name, func(b *testing.B) {
			var tReg, tRaw time.Duration
			timed := func(f func(), sum *time.Duration) {
				start := time.Now()
				f()
				*sum += time.Since(start)
			}
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 {
					timed(op.regent, &tReg)
					timed(op.raw, &tRaw)
				} else {
					timed(op.raw, &tRaw)
					timed(op.regent, &tReg)
				}
			}
			b.ReportMetric(float64(tReg.Nanoseconds())/float64(b.N), "regent-ns/op")
			b.ReportMetric(float64(tRaw.Nanoseconds())/float64(b.N), "raw-ns/op")
			b.ReportMetric(float64(tReg)/float64(tRaw), "regent/raw")
		})
	}
}
