package bench

import (
	"bytes"
	"context"
	"strconv"
	"testing"

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
	srv := testenv.Consul(b, testenv.ConsulOptions{})
	ctx := context.Background()
	s, err := consul.New(ctx, consul.Config{Addresses: []string{srv.Addr}, Root: "bench", MinTTL: 1e9, LockTTL: 3e9})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		b.Fatal(err)
	}
	rkv := raw.KV()
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
