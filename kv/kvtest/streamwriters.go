package kvtest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/regentkv/regent/kv"
)

// Concurrent writers for testEventsConcurrentWriters: enough operations on
// a small, nested key set that changes to different keys land while the
// stream is still reading the previous ones.
const (
	streamWriters       = 3
	streamOpsPerWriter  = 80
	streamWriterKeySets = 4
)

// testEventsConcurrentWriters streams a prefix while several clients put
// and delete nested keys below it at once. Whatever a store may merge, the
// stream must never go back: event revisions never decrease, none is above
// its batch's revision or at or below the previous batch's (which claimed
// every change up to it), batch revisions never decrease, and the stream
// ends in the store's final state at a batch revision at least the
// store's revision after the last write. A batch at revision R promises
// every change up to R: an event below R arriving after it is one the
// stream had claimed to have delivered.
func testEventsConcurrentWriters(e *env) {
	_, st := e.streamer()
	p := e.key("p")
	seed := uint64(time.Now().UnixNano())
	e.Logf("seed %d", seed)
	var keys []string
	for i := range streamWriterKeySets {
		keys = append(keys, fmt.Sprintf("%s/k%d", p, i))
		for j := range streamWriterKeySets {
			keys = append(keys, fmt.Sprintf("%s/d%d/k%d", p, i, j))
		}
	}
	snap, err := st.Snapshot(e.ctx, p)
	if err != nil {
		e.Fatalf("Snapshot: %v", err)
	}
	ch, err := st.Events(e.ctx, p, snap.Revision)
	if err != nil {
		e.Fatalf("Events: %v", err)
	}
	writers := make([]kv.Store, streamWriters)
	for i := range writers {
		writers[i] = e.store()
	}
	errs := make(chan error, streamWriters)
	var wg sync.WaitGroup
	for w, s := range writers {
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Go(func() {
			for i := range streamOpsPerWriter {
				k := keys[rng.IntN(len(keys))]
				var err error
				if rng.IntN(3) == 0 {
					if err = s.Delete(e.ctx, k); errorsIs(err, kv.ErrKeyNotFound) {
						err = nil
					}
				} else {
					err = s.Put(e.ctx, k, fmt.Appendf(nil, "w%d-%d", w, i), nil)
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d op %d on %q: %w", w, i, k, err)
					return
				}
			}
		})
	}
	var lastBatch, lastEv uint64
	state := map[string]string{}
	apply := func(b kv.EventBatch) {
		e.Helper()
		if b.Err != nil {
			e.Fatalf("Events batch error: %v", b.Err)
		}
		if b.Revision < lastBatch {
			e.Fatalf("batch revision went back from %d to %d", lastBatch, b.Revision)
		}
		claimed := lastBatch
		lastBatch = b.Revision
		for _, ev := range b.Events {
			if ev.Pair == nil {
				e.Fatalf("event %v with a nil Pair", ev.Type)
			}
			k := ev.Pair.Key
			if !kv.IsBelow(k, p) {
				e.Fatalf("event %v for %q, which is not below %q", ev.Type, k, p)
			}
			if ev.Pair.Revision < lastEv || ev.Pair.Revision <= claimed || ev.Pair.Revision > b.Revision {
				e.Fatalf("event %v %q revision %d: previous event %d, previous batch %d, this batch %d (seed %d)",
					ev.Type, k, ev.Pair.Revision, lastEv, claimed, b.Revision, seed)
			}
			lastEv = ev.Pair.Revision
			switch ev.Type {
			case kv.EventPut:
				state[k] = string(ev.Pair.Value)
			case kv.EventDelete:
				delete(state, k)
			}
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for writing := true; writing; {
		select {
		case b, ok := <-ch:
			if !ok {
				e.Fatalf("Events: channel closed while the writers ran")
			}
			apply(b)
		case err := <-errs:
			e.Fatalf("%v", err)
		case <-done:
			writing = false
		case <-e.ctx.Done():
			e.Fatalf("writers did not finish: %v", e.ctx.Err())
		}
	}
	select {
	case err := <-errs:
		e.Fatalf("%v", err)
	default:
	}
	final, err := st.Revision(e.ctx)
	if err != nil {
		e.Fatalf("Revision: %v", err)
	}
	want := map[string]string{}
	pairs, err := writers[0].List(e.ctx, p, nil)
	if err != nil && !errorsIs(err, kv.ErrKeyNotFound) {
		e.Fatalf("List(%q): %v", p, err)
	}
	for _, pr := range pairs {
		want[pr.Key] = string(pr.Value)
	}
	deadline := time.Now().Add(updateWait + progressWait)
	for !maps.Equal(state, want) || lastBatch < final {
		if time.Now().After(deadline) {
			e.Fatalf("Events: after the writers, state %v at batch revision %d; want %v at %d or later", state, lastBatch, want, final)
		}
		apply(next(e, ch, updateWait, "Events"))
	}
}
