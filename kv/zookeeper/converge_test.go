package zookeeper_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
)

// TestEventsConvergeUnderConcurrentWriters follows Events from a Snapshot
// while several sessions put and delete the same few keys: the events,
// applied in the order given, must end in the state List shows. One-shot
// watches and re-reads race with the writers here (a key deleted and
// re-created, or changed and deleted, before its watch is re-armed).
func TestEventsConvergeUnderConcurrentWriters(t *testing.T) {
	cfg := config(server.Servers(), "/converge")
	s := open(t, cfg)
	ctx := t.Context()
	prefix := fmt.Sprintf("c%d", time.Now().UnixNano())
	snap, err := s.Snapshot(ctx, prefix)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	ch, err := s.Events(ctx, prefix, snap.Revision)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	var mu sync.Mutex
	mirror := map[string]string{}
	var pos uint64
	var streamErr error
	done := make(chan struct{})
	// Before the Store's Close: the test's ctx ends first, closing ch.
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		for b := range ch {
			mu.Lock()
			for _, ev := range b.Events {
				if ev.Type == kv.EventDelete {
					delete(mirror, ev.Pair.Key)
				} else {
					mirror[ev.Pair.Key] = string(ev.Pair.Value)
				}
			}
			pos = b.Revision
			if b.Err != nil {
				streamErr = b.Err
			}
			mu.Unlock()
		}
	}()

	const writers, keys, ops = 4, 10, 300
	var wg sync.WaitGroup
	for w := range writers {
		ws := open(t, cfg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := range ops {
				k := fmt.Sprintf("%s/k%d", prefix, r.IntN(keys))
				var err error
				if r.IntN(3) == 0 {
					if err = ws.Delete(ctx, k); errors.Is(err, kv.ErrKeyNotFound) {
						err = nil
					}
				} else {
					err = ws.Put(ctx, k, []byte(fmt.Sprintf("w%d-%d", w, i)), nil)
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()

	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	poll.Until(t, 20*time.Second, "stream caught up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return pos >= rev || streamErr != nil
	})
	pairs, err := s.List(ctx, prefix, nil)
	if err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
		t.Fatalf("List: %v", err)
	}
	want := map[string]string{}
	for _, p := range pairs {
		want[p.Key] = string(p.Value)
	}
	mu.Lock()
	defer mu.Unlock()
	if streamErr != nil {
		t.Fatalf("stream ended: %v", streamErr)
	}
	for k, v := range want {
		if got, ok := mirror[k]; !ok || got != v {
			t.Errorf("%s: stream has %q (present %v), List has %q", k, got, ok, v)
		}
	}
	for k, v := range mirror {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: stream has %q, List has no such key", k, v)
		}
	}
}
