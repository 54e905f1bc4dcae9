package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv/zookeeper"
)

// BenchmarkZookeeper compares the regent driver with the raw go-zookeeper
// client on the same server in the same run. Raw List100 is Children plus
// 100 sequential Gets; raw WatchLatency is write -> watch event -> GetW
// (re-arm and read the new value), which is what a watcher that wants the
// value must do, and what regent's Watch delivers.
func BenchmarkZookeeper(b *testing.B) {
	srv := testenv.ZooKeeper(b)
	ctx := context.Background()
	s, err := zookeeper.New(ctx, zookeeper.Config{Servers: srv.Servers(), Root: "/bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw, _, err := zk.Connect(srv.Servers(), 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	for _, p := range []string{"/raw", "/raw/k", "/raw/list"} {
		if _, err := raw.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			b.Fatal(err)
		}
	}
	value := []byte("a value of some thirty-two bytes")
	if err := s.Put(ctx, "k", value, nil); err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		k := "list/" + strconv.Itoa(i)
		if err := s.Put(ctx, k, value, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := raw.Create("/raw/"+k, value, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
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
			if _, err := raw.Set("/raw/k", value, -1); err != nil {
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
			if _, _, err := raw.Get("/raw/k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("List100/regent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ps, err := s.List(ctx, "list", nil)
			if err != nil || len(ps) != 100 {
				b.Fatalf("List: %d pairs, %v", len(ps), err)
			}
		}
	})
	b.Run("List100/raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			names, _, err := raw.Children("/raw/list")
			if err != nil || len(names) != 100 {
				b.Fatalf("Children: %d, %v", len(names), err)
			}
			for _, n := range names {
				if _, _, err := raw.Get("/raw/list/" + n); err != nil {
					b.Fatal(err)
				}
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
		<-ch // current state
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			want := strconv.Itoa(i)
			if _, err := raw.Set("/bench/w", append([]byte{1}, want...), -1); err == zk.ErrNoNode {
				_, err = raw.Create("/bench/w", append([]byte{1}, want...), 0, zk.WorldACL(zk.PermAll))
				if err != nil {
					b.Fatal(err)
				}
			} else if err != nil {
				b.Fatal(err)
			}
			for u := range ch {
				if u.Err != nil {
					b.Fatal(u.Err)
				}
				if u.Pair != nil && string(u.Pair.Value) == want {
					break
				}
			}
		}
	})
	b.Run("WatchLatency/raw", func(b *testing.B) {
		if _, err := raw.Create("/raw/w", nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			b.Fatal(err)
		}
		_, _, w, err := raw.GetW("/raw/w")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			want := strconv.Itoa(i)
			if _, err := raw.Set("/raw/w", []byte(want), -1); err != nil {
				b.Fatal(err)
			}
			for {
				<-w
				var data []byte
				data, _, w, err = raw.GetW("/raw/w")
				if err != nil {
					b.Fatal(err)
				}
				if string(data) == want {
					break
				}
			}
		}
	})
}
