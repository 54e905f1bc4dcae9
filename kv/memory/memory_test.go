package memory_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
	"github.com/regentkv/regent/kv/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func harness(b *memory.Backend) kvtest.Harness {
	return kvtest.Harness{
		Name: "memory",
		New:  func(testing.TB) kv.Store { return b.Client() },
		Kill: func(t testing.TB, s kv.Store) { s.(*memory.Store).Kill() },
		Compact: func(t testing.TB, s kv.Store, rev uint64) {
			s.(*memory.Store).Backend().Compact(rev)
		},
		MinTTL:   memory.MinTTL,
		TTLSlack: 50 * time.Millisecond,
	}
}

func TestConformance(t *testing.T) {
	b := memory.NewBackend()
	t.Cleanup(b.Close)
	kvtest.Run(t, harness(b))
}

func BenchmarkPut(b *testing.B) {
	s := memory.New()
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	v := []byte("value")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := s.Put(ctx, "bench/"+strconv.Itoa(i%1000), v, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s := memory.New()
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	if err := s.Put(ctx, "bench/k", []byte("value"), nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "bench/k", nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkList100(b *testing.B) {
	s := memory.New()
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	for i := range 100 {
		if err := s.Put(ctx, fmt.Sprintf("bench/%03d", i), []byte("value"), nil); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1000 { // keys outside the prefix
		if err := s.Put(ctx, fmt.Sprintf("other/%04d", i), []byte("value"), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		l, err := s.List(ctx, "bench", nil)
		if err != nil || len(l) != 100 {
			b.Fatalf("List: %d pairs, %v", len(l), err)
		}
	}
}
