package discovery_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/discovery"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
)

// hookedStore is a store whose Put and Delete can be intercepted.
type hookedStore struct {
	kv.Store
	put    func(ctx context.Context) error // before the write; an error refuses it
	delete func() error                    // before the delete; an error refuses it
}

func (h *hookedStore) Put(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	if h.put != nil {
		if err := h.put(ctx); err != nil {
			return err
		}
	}
	return h.Store.Put(ctx, key, value, opts)
}

func (h *hookedStore) Delete(ctx context.Context, key string) error {
	if h.delete != nil {
		if err := h.delete(); err != nil {
			return err
		}
	}
	return h.Store.Delete(ctx, key)
}

// TestDeregisterWaitsForAPublishInFlight: a publish the health loop has
// sent when Deregister is called is not cancelled (a cancelled write may
// still land, after the delete), and Deregister deletes after it: the
// record is gone once Deregister returns.
func TestDeregisterWaitsForAPublishInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.New()
		defer func() { _ = mem.Close() }()
		inFlight, release := make(chan struct{}), make(chan struct{})
		var puts atomic.Int32
		var cancelled atomic.Bool
		s := &hookedStore{Store: mem, put: func(ctx context.Context) error {
			if puts.Add(1) == 1 {
				close(inFlight)
				<-release
				cancelled.Store(ctx.Err() != nil)
			}
			return nil
		}}
		var healthy atomic.Bool
		r, err := discovery.Register(t.Context(), s, "api", discovery.Instance{ID: "i1", Address: "127.0.0.1:1"}, &discovery.RegisterOptions{
			TTL: time.Minute, SuccessThreshold: 1,
			Health: func(context.Context) error {
				if !healthy.Load() {
					return errors.New("warming up")
				}
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		healthy.Store(true)
		<-inFlight // the first publish, by the health loop
		deregistered := make(chan error, 1)
		go func() { deregistered <- r.Deregister(context.Background()) }()
		synctest.Wait() // Deregister is waiting for the loop
		close(release)
		if err := <-deregistered; err != nil {
			t.Fatal(err)
		}
		if cancelled.Load() {
			t.Error("Deregister cancelled the publish in flight")
		}
		if ok, _ := mem.Exists(t.Context(), r.Key(), nil); ok {
			t.Error("record present after Deregister returned")
		}
	})
}

// TestDeregisterRetriesAFailedDelete: a Deregister whose delete failed can
// be called again, and deletes then.
func TestDeregisterRetriesAFailedDelete(t *testing.T) {
	mem := memory.New()
	defer func() { _ = mem.Close() }()
	var refuse atomic.Bool
	s := &hookedStore{Store: mem, delete: func() error {
		if refuse.Load() {
			return kv.ErrNotReachable
		}
		return nil
	}}
	r, err := discovery.Register(t.Context(), s, "api", discovery.Instance{ID: "i1", Address: "127.0.0.1:1"}, &discovery.RegisterOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	refuse.Store(true)
	if err := r.Deregister(t.Context()); !errors.Is(err, kv.ErrNotReachable) {
		t.Fatalf("Deregister with the store unreachable: %v; want ErrNotReachable", err)
	}
	refuse.Store(false)
	if err := r.Deregister(t.Context()); err != nil {
		t.Fatalf("second Deregister: %v", err)
	}
	if ok, _ := mem.Exists(t.Context(), r.Key(), nil); ok {
		t.Error("record present after the second Deregister")
	}
	if err := r.Deregister(t.Context()); err != nil {
		t.Errorf("third Deregister: %v; want nil (idempotent)", err)
	}
}

// TestHealthLoopEndsWithTheStore: the health loop of a healthy instance
// (which writes nothing while it stays healthy) ends when its store is
// closed: the health check is not called again.
func TestHealthLoopEndsWithTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memory.New()
		var checks atomic.Int32
		_, err := discovery.Register(t.Context(), s, "api", discovery.Instance{ID: "i1", Address: "127.0.0.1:1"}, &discovery.RegisterOptions{
			TTL: time.Minute, HealthInterval: time.Second,
			Health: func(context.Context) error { checks.Add(1); return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if checks.Load() < 3 {
			t.Fatalf("%d checks in 3 s; want the loop running", checks.Load())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		before := checks.Load()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := checks.Load() - before; n > 0 {
			t.Errorf("%d health checks after the store was closed; want the loop ended", n)
		}
	})
}

// TestTTLCheckedAtRegister: a TTL the store cannot honour fails Register,
// also when the first health check fails (nothing is written then, so no
// write would have said so).
func TestTTLCheckedAtRegister(t *testing.T) {
	s := memory.New()
	defer func() { _ = s.Close() }()
	_, err := discovery.Register(t.Context(), s, "api", discovery.Instance{ID: "i1", Address: "127.0.0.1:1"}, &discovery.RegisterOptions{
		TTL:    memory.MinTTL / 2,
		Health: func(context.Context) error { return errors.New("warming up") },
	})
	var te *kv.TTLError
	if !errors.As(err, &te) || te.Min != memory.MinTTL {
		t.Fatalf("Register with a TTL below the store's minimum and a failing check: %v; want a *kv.TTLError naming %v", err, memory.MinTTL)
	}
}

// watchCountingStore counts the watches opened on it.
type watchCountingStore struct {
	kv.Store
	watches atomic.Int32
}

func (w *watchCountingStore) Watch(ctx context.Context, key string, opts *kv.ReadOptions) (<-chan kv.KeyUpdate, error) {
	w.watches.Add(1)
	return w.Store.Watch(ctx, key, opts)
}

// TestRegistrationWatchesOnlyWhenItHasAUse: a Registration with neither a
// Health check nor Metrics opens no watch of its record (nothing would read
// what it sees); one with Metrics opens one, and both deregister.
func TestRegistrationWatchesOnlyWhenItHasAUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.New()
		defer func() { _ = mem.Close() }()
		ctx := context.Background()
		for _, c := range []struct {
			name    string
			opts    *discovery.RegisterOptions
			watches int32
		}{
			{"plain", nil, 0},
			{"metrics", &discovery.RegisterOptions{Metrics: discovery.NewMetrics()}, 1},
			{"health", &discovery.RegisterOptions{Health: func(context.Context) error { return nil }}, 1},
		} {
			s := &watchCountingStore{Store: mem}
			r, err := discovery.Register(ctx, s, "svc", discovery.Instance{ID: c.name, Address: "127.0.0.1:1"}, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if got := s.watches.Load(); got != c.watches {
				t.Errorf("%s: %d watches of the record, want %d", c.name, got, c.watches)
			}
			if err := r.Deregister(ctx); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if ok, err := mem.Exists(ctx, r.Key(), nil); err != nil || ok {
				t.Fatalf("%s: record still there after Deregister (%v, %v)", c.name, ok, err)
			}
		}
	})
}
