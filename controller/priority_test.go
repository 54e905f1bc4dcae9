package controller_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/controller"
	"github.com/regentkv/regent/informer"
)

// order returns the keys reconciled so far, in order.
func (r *recorder) order() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.seen))
	for _, req := range r.seen {
		keys = append(keys, req.Key)
	}
	return keys
}

// blockFirst is a recorder whose first reconcile waits for the returned
// release, so that a test can change things while the queue is full.
func blockFirst() (*recorder, func()) {
	gate := make(chan struct{})
	var once sync.Once
	r := newRecorder(func(controller.Request[string], int) (controller.Result, error) {
		once.Do(func() { <-gate })
		return controller.Result{}, nil
	})
	return r, func() { close(gate) }
}

// A term's first pass over the cache is queued at low priority: a change
// made while it runs (a new key, or an update of a key still waiting in
// the fill) is reconciled next, not after the whole fill.
func TestLiveChangesGoBeforeTheFill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newMemory(t)
		const cached = 20
		for i := range cached {
			put(t, s, fmt.Sprintf("apps/k%02d", i), "1")
		}
		inf := newInformer(t, s, "apps")
		r, release := blockFirst()
		c := newController(t, controller.Config[string]{Informer: inf, Reconciler: r, Workers: 1})
		background(t, "Controller.Run", c.Run, nil)
		synctest.Wait() // the first fill key is being reconciled, the rest queued
		put(t, s, "apps/new", "1")
		put(t, s, "apps/k15", "2")
		synctest.Wait()
		release()
		synctest.Wait()
		got := r.order()
		if len(got) != cached+1 {
			t.Fatalf("reconciled %d keys, want %d: %v", len(got), cached+1, got)
		}
		if !slices.Equal(got[1:3], []string{"apps/new", "apps/k15"}) {
			t.Fatalf("after the first fill key came %v, want the two live changes first (order %v)", got[1:3], got)
		}
		if slices.Index(got[3:], "apps/k15") >= 0 {
			t.Fatalf("apps/k15 reconciled twice: it was raised, not queued again (order %v)", got)
		}
	})
}

// Resyncs are queued at low priority too: a live change made during one is
// reconciled next.
func TestLiveChangesGoBeforeAResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newMemory(t)
		const cached = 10
		for i := range cached {
			put(t, s, fmt.Sprintf("apps/k%02d", i), "1")
		}
		inf, err := informer.New(s, informer.Config[string]{Prefix: "apps", Decode: decodeString, ResyncPeriod: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		background(t, "informer.Run", inf.Run, context.Canceled)
		gate := make(chan struct{})
		r := newRecorder(func(_ controller.Request[string], n int) (controller.Result, error) {
			if n == 2 { // the first reconcile of the resync
				<-gate
			}
			return controller.Result{}, nil
		})
		c := newController(t, controller.Config[string]{Informer: inf, Reconciler: r, Workers: 1})
		background(t, "Controller.Run", c.Run, nil)
		synctest.Wait()
		if n := len(r.order()); n != cached {
			t.Fatalf("%d reconciles after the fill, want %d", n, cached)
		}
		time.Sleep(time.Minute + 10*time.Second) // past the resync, jitter included
		synctest.Wait()                          // the resync's first key is being reconciled
		put(t, s, "apps/live", "1")
		synctest.Wait()
		close(gate)
		synctest.Wait()
		got := r.order()
		if len(got) < cached+2 || got[cached+1] != "apps/live" {
			t.Fatalf("after the resync's first key came %v, want apps/live (order %v)", got[cached+1:], got)
		}
	})
}
