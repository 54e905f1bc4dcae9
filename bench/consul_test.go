package bench

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/consul"
)

// BenchmarkConsul compares the regent driver with the raw consul/api client
// on the same agent in the same run. Raw Put is a plain KV PUT; regent's is
// a transaction (delete + set) so that a key written earlier with a TTL
// loses its session. Raw WatchLatency is a goroutine of blocking Gets that
// hands each new value over a channel, which is what regent's Watch does.
func BenchmarkConsul(b *testing.B) {
	ctx := context.Background()
	s, rkv := consulPair(b)
	value := []byte("a value of some thirty-two bytes")
	if err := s.Put(ctx, "k", value, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := rkv.Put(&api.KVPair{Key: "raw/k", Value: value}, nil); err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		k := "list/" + strconv.Itoa(i)
		if err := s.Put(ctx, k, value, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := rkv.Put(&api.KVPair{Key: "raw/" + k, Value: value}, nil); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("Put/regent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Put(ctx, "k", value, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Put/raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rkv.Put(&api.KVPair{Key: "raw/k", Value: value}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get/regent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Get(ctx, "k", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get/raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p, _, err := rkv.Get("raw/k", nil); err != nil || p == nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("List100/regent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if l, err := s.List(ctx, "list", nil); err != nil || len(l) != 100 {
				b.Fatal(len(l), err)
			}
		}
	})
	b.Run("List100/raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if l, _, err := rkv.List("raw/list/", nil); err != nil || len(l) != 100 {
				b.Fatal(len(l), err)
			}
		}
	})
	b.Run("WatchLatency/regent", func(b *testing.B) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := s.Watch(wctx, "w", nil)
		if err != nil {
			b.Fatal(err)
		}
		<-ch
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			v := []byte(strconv.Itoa(i))
			if err := s.Put(ctx, "w", v, nil); err != nil {
				b.Fatal(err)
			}
			waitRegent(b, ch, v)
		}
	})
	b.Run("WatchLatency/raw", func(b *testing.B) {
		wctx, cancel := context.WithCancel(ctx)
		ch := rawWatch(wctx, rkv, "raw/w")
		defer func() {
			cancel()
			for range ch {
			}
		}()
		<-ch
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			v := []byte(strconv.Itoa(i))
			if _, err := rkv.Put(&api.KVPair{Key: "raw/w", Value: v}, nil); err != nil {
				b.Fatal(err)
			}
			for p := range ch {
				if p != nil && bytes.Equal(p.Value, v) {
					break
				}
			}
		}
	})
}

func waitRegent(b *testing.B, ch <-chan kv.KeyUpdate, v []byte) {
	for u := range ch {
		if u.Err != nil {
			b.Fatal(u.Err)
		}
		if u.Pair != nil && bytes.Equal(u.Pair.Value, v) {
			return
		}
	}
	b.Fatal("watch ended")
}

// rawWatch is the minimal correct blocking-query loop with consul/api:
// wait on the last index, hand over the pair when its ModifyIndex changed.
func rawWatch(ctx context.Context, k *api.KV, key string) <-chan *api.KVPair {
	ch := make(chan *api.KVPair)
	go func() {
		defer close(ch)
		var index, last uint64
		first := true
		for {
			p, meta, err := k.Get(key, (&api.QueryOptions{WaitIndex: index}).WithContext(ctx))
			if err != nil {
				return
			}
			if meta.LastIndex < index {
				index = 0
				continue
			}
			index = max(meta.LastIndex, 1)
			var mod uint64
			if p != nil {
				mod = p.ModifyIndex
			}
			if !first && mod == last {
				continue
			}
			first, last = false, mod
			select {
			case ch <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// BenchmarkConsulPaired runs each regent call back to back with the same
// raw call, alternating which goes first, and reports the median of each
// side and their ratio. On a shared machine whose load drifts during a run,
// this pairing is what makes a few-percent comparison possible at all.
func BenchmarkConsulPaired(b *testing.B) {
	ctx := context.Background()
	s, rkv := consulPair(b)
	value := []byte("a value of some thirty-two bytes")
	for i := range 100 {
		k := "list/" + strconv.Itoa(i)
		if err := s.Put(ctx, k, value, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := rkv.Put(&api.KVPair{Key: "raw/" + k, Value: value}, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Put(ctx, "k", value, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := rkv.Put(&api.KVPair{Key: "raw/k", Value: value}, nil); err != nil {
		b.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rch, err := s.Watch(wctx, "w", nil)
	if err != nil {
		b.Fatal(err)
	}
	<-rch
	xch := rawWatch(wctx, rkv, "raw/w")
	defer func() {
		cancel()
		for range xch {
		}
	}()
	<-xch
	n := 0
	ops := []struct {
		name        string
		regent, raw func()
	}{
		{"Put",
			func() { must(b, s.Put(ctx, "k", value, nil)) },
			func() { _, err := rkv.Put(&api.KVPair{Key: "raw/k", Value: value}, nil); must(b, err) }},
		{"Get",
			func() { _, err := s.Get(ctx, "k", nil); must(b, err) },
			func() { _, _, err := rkv.Get("raw/k", nil); must(b, err) }},
		// Consistent: regent's is a transaction with a no-op write (through
		// raft, linearizable); raw is Consul's ?consistent (a leader check,
		// which can be stale after a leader stall: kv/consul readThroughRaft).
		{"GetConsistent",
			func() { _, err := s.Get(ctx, "k", &kv.ReadOptions{Consistent: true}); must(b, err) },
			func() { _, _, err := rkv.Get("raw/k", &api.QueryOptions{RequireConsistent: true}); must(b, err) }},
		{"List100",
			func() { _, err := s.List(ctx, "list", nil); must(b, err) },
			func() { _, _, err := rkv.List("raw/list/", nil); must(b, err) }},
		{"WatchLatency",
			func() {
				n++
				v := []byte(strconv.Itoa(n))
				must(b, s.Put(ctx, "w", v, nil))
				waitRegent(b, rch, v)
			},
			func() {
				n++
				v := []byte(strconv.Itoa(n))
				_, err := rkv.Put(&api.KVPair{Key: "raw/w", Value: v}, nil)
				must(b, err)
				for p := range xch {
					if p != nil && bytes.Equal(p.Value, v) {
						break
					}
				}
			}},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			var rg, rw []time.Duration
			i := 0
			for b.Loop() {
				first, second := op.regent, op.raw
				if i%2 == 1 {
					first, second = op.raw, op.regent
				}
				t0 := time.Now()
				first()
				t1 := time.Now()
				second()
				t2 := time.Now()
				if i%2 == 0 {
					rg, rw = append(rg, t1.Sub(t0)), append(rw, t2.Sub(t1))
				} else {
					rw, rg = append(rw, t1.Sub(t0)), append(rg, t2.Sub(t1))
				}
				i++
			}
			mg, mw := median(rg), median(rw)
			b.ReportMetric(float64(mg.Nanoseconds()), "regent-ns/op")
			b.ReportMetric(float64(mw.Nanoseconds()), "raw-ns/op")
			b.ReportMetric(float64(mg)/float64(mw), "regent/raw")
		})
	}
}

func must(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// consulPair starts an agent for the benchmark and returns regent's store
// (root "bench") and the raw KV client on it, both closed by b.Cleanup.
func consulPair(b *testing.B) (*consul.Store, *api.KV) {
	srv := testenv.Consul(b, testenv.ConsulOptions{})
	s, err := consul.New(context.Background(), consul.Config{Addresses: []string{srv.Addr}, Root: "bench", SessionTTLMin: time.Second, LockTTL: 3 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	raw, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		b.Fatal(err)
	}
	return s, raw.KV()
}
