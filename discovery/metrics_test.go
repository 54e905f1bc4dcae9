package discovery_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regentkv/regent/discovery"
	"github.com/regentkv/regent/kv/memory"
)

// TestMetrics: a watcher counts its instances; a registration says whether
// its record is published, and counts withdrawals, losses and restores.
func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		backend := memory.NewBackend()
		defer backend.Close()
		proc, other, client := backend.Client(), backend.Client(), backend.Client()
		defer func() { _ = proc.Close() }()
		defer func() { _ = other.Close() }()
		defer func() { _ = client.Close() }()
		m := discovery.NewMetrics()
		ctx := t.Context()

		w, err := discovery.NewWatcher(client, "api", &discovery.WatchOptions{Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(runCtx) }()
		defer func() {
			stop()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Watcher.Run: %v", err)
			}
		}()
		if err := w.WaitForSync(ctx); err != nil {
			t.Fatal(err)
		}
		settle := synctest.Wait
		settle()
		instances := func() float64 { return testutil.ToFloat64(m.Collectors().Instances.WithLabelValues("api")) }
		if n := instances(); n != 0 {
			t.Fatalf("instances before any registration = %v; want 0", n)
		}

		var failing atomic.Bool
		r, err := discovery.Register(ctx, proc, "api", discovery.Instance{ID: "i1", Address: "127.0.0.1:1"}, &discovery.RegisterOptions{
			TTL: time.Minute, HealthInterval: time.Second, FailureThreshold: 1, SuccessThreshold: 1, Metrics: m,
			Health: func(context.Context) error {
				if failing.Load() {
					return errors.New("down")
				}
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := discovery.Register(ctx, other, "api", discovery.Instance{ID: "i2", Address: "127.0.0.1:2"}, &discovery.RegisterOptions{TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		settle()
		c := m.Collectors()
		published := func() float64 { return testutil.ToFloat64(c.Published.WithLabelValues("api", "i1")) }
		counter := func(name string) float64 {
			switch name {
			case "withdrawals":
				return testutil.ToFloat64(c.Withdrawals.WithLabelValues("api"))
			case "lost":
				return testutil.ToFloat64(c.Lost.WithLabelValues("api"))
			}
			return testutil.ToFloat64(c.Restored.WithLabelValues("api"))
		}
		if instances() != 2 || published() != 1 {
			t.Fatalf("after two registrations: instances %v, i1 published %v; want 2, 1", instances(), published())
		}

		// Lost: the record goes while healthy (as with a lost session);
		// restored: it comes back (as the store restores it).
		if err := client.Delete(ctx, r.Key()); err != nil {
			t.Fatal(err)
		}
		settle()
		if counter("lost") != 1 || published() != 0 || instances() != 1 {
			t.Fatalf("after the record was lost: lost %v, published %v, instances %v; want 1, 0, 1", counter("lost"), published(), instances())
		}
		if err := client.Put(ctx, r.Key(), []byte(`{"id":"i1","address":"127.0.0.1:1"}`), nil); err != nil {
			t.Fatal(err)
		}
		settle()
		if counter("restored") != 1 || published() != 1 || instances() != 2 {
			t.Fatalf("after the record came back: restored %v, published %v, instances %v; want 1, 1, 2", counter("restored"), published(), instances())
		}

		// A withdrawal is no loss.
		failing.Store(true)
		time.Sleep(time.Second)
		settle()
		if counter("withdrawals") != 1 || counter("lost") != 1 || published() != 0 {
			t.Fatalf("after a failing check: withdrawals %v, lost %v, published %v; want 1, 1, 0", counter("withdrawals"), counter("lost"), published())
		}
		failing.Store(false)
		time.Sleep(time.Second)
		settle()
		if published() != 1 || counter("restored") != 1 {
			t.Fatalf("after a passing check: published %v, restored %v; want 1, 1 (a republish is no restore)", published(), counter("restored"))
		}

		if err := r.Deregister(ctx); err != nil {
			t.Fatal(err)
		}
		settle()
		if n := testutil.CollectAndCount(c.Published); n != 0 {
			t.Errorf("published series after Deregister: %d; want the instance's dropped", n)
		}
		if instances() != 1 {
			t.Errorf("instances after Deregister = %v; want 1", instances())
		}
	})
}
