package controller_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regentkv/regent/controller"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
)

// benchController runs an informer of prefix and a controller whose
// reconciler calls seen; it returns when both are running.
func benchController(b *testing.B, s kv.Store, workers int, seen func(controller.Request[string])) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	inf, err := informer.New(s, informer.Config[string]{Prefix: "bench", Decode: decodeString})
	if err != nil {
		b.Fatal(err)
	}
	c, err := controller.New(controller.Config[string]{Name: "bench", Informer: inf, Workers: workers,
		Reconciler: controller.ReconcileFunc[string](func(_ context.Context, req controller.Request[string]) (controller.Result, error) {
			seen(req)
			return controller.Result{}, nil
		})})
	if err != nil {
		b.Fatal(err)
	}
	infDone, ctlDone := make(chan error, 1), make(chan error, 1)
	go func() { infDone <- inf.Run(ctx) }()
	go func() { ctlDone <- c.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-infDone; err != context.Canceled { //nolint:errorlint // Run returns ctx.Err() itself
			b.Errorf("informer Run = %v", err)
		}
		if err := <-ctlDone; err != nil {
			b.Errorf("controller Run = %v", err)
		}
	})
	if err := inf.WaitForCacheSync(ctxFor(b, 10*time.Second)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPutToReconcile: from a Put returning to the reconcile that sees
// the new value (memory store: the runtime's own cost, informer + queue +
// worker hand-offs).
//
//	go test -run '^$' -bench BenchmarkPutToReconcile -benchmem ./controller
func BenchmarkPutToReconcile(b *testing.B) {
	s := memory.New()
	b.Cleanup(func() { _ = s.Close() })
	got := make(chan string, 1)
	benchController(b, s, 1, func(req controller.Request[string]) {
		select {
		case got <- req.Object:
		default:
		}
	})
	ctx := ctxFor(b, time.Minute)
	b.ResetTimer()
	for i := range b.N {
		want := strconv.Itoa(i)
		if err := s.Put(ctx, "bench/key", []byte(want), nil); err != nil {
			b.Fatal(err)
		}
		for v := range got {
			if v == want {
				break
			}
		}
	}
}

// BenchmarkThroughput: b.N distinct keys written, then reconciled by
// 1 or 8 workers; reports reconciles per second.
//
//	go test -run '^$' -bench BenchmarkThroughput -benchmem ./controller
func BenchmarkThroughput(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			s := memory.New()
			b.Cleanup(func() { _ = s.Close() })
			var n atomic.Int64
			done := make(chan struct{})
			target := int64(b.N)
			benchController(b, s, workers, func(controller.Request[string]) {
				if n.Add(1) == target {
					close(done)
				}
			})
			ctx := ctxFor(b, 5*time.Minute)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if err := s.Put(ctx, "bench/k"+strconv.Itoa(i), []byte("v"), nil); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-ctx.Done():
				b.Fatalf("%d of %d reconciled", n.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reconciles/s")
		})
	}
}
