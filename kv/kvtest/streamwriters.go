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
// stream had claimed to have delivered, and so is a put at or below R
// (puts are compare-and-swaps here, which return their revision) newer
// than the last event of its key by then.
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
	puts := &writeLog{}
	errs := make(chan error, streamWriters)
	var wg sync.WaitGroup
	for w, s := range writers {
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Go(func() {
			for i := range streamOpsPerWriter {
				k := keys[rng.IntN(len(keys))]
				var err error
				if rng.IntN(3) == 0 {
					if err = s.Delete(e.ctx, k); err == nil {
						puts.deleted(w, k)
					} else if errorsIs(err, kv.ErrKeyNotFound) {
						err = nil
					}
				} else {
					err = casPut(e, s, w, k, fmt.Appendf(nil, "w%d-%d", w, i), puts)
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
	// seen[k] is the revision of the last event of k; claims keeps it for
	// every batch, checked against the writers' puts at the end.
	seen := map[string]uint64{}
	type claim struct {
		rev  uint64
		seen map[string]uint64
	}
	var claims []claim
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
			seen[k] = ev.Pair.Revision
			switch ev.Type {
			case kv.EventPut:
				state[k] = string(ev.Pair.Value)
			case kv.EventDelete:
				delete(state, k)
			}
		}
		claims = append(claims, claim{rev: b.Revision, seen: maps.Clone(seen)})
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
	// A batch at R claims every change up to R: the latest put of k at or
	// below R must have been delivered by then, unless a delete of k
	// after it may be at or below R too (a delete returns no revision: it
	// lies between its writer's puts before and after it).
	for _, c := range claims {
		for k, r := range puts.latest(c.rev) {
			if c.seen[k] < r && !puts.mayBeDeleted(k, r, c.rev) {
				e.Fatalf("Events: a batch at revision %d claimed every change up to it, but the put of %q at %d was not delivered (last event of it: %d; seed %d)",
					c.rev, k, r, c.seen[k], seed)
			}
		}
	}
}

// writeLog is what the writers did, per writer in order: puts with their
// revisions, and deletes (without: a delete returns none).
type writeLog struct {
	mu  sync.Mutex
	ops [streamWriters][]loggedWrite
}

type loggedWrite struct {
	key string
	rev uint64 // 0 for a delete
}

func (l *writeLog) put(w int, k string, rev uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops[w] = append(l.ops[w], loggedWrite{key: k, rev: rev})
}

func (l *writeLog) deleted(w int, k string) { l.put(w, k, 0) }

// latest returns, per key, the revision of its latest put at or below rev.
func (l *writeLog) latest(rev uint64) map[string]uint64 {
	out := map[string]uint64{}
	for _, ops := range l.ops {
		for _, o := range ops {
			if o.rev != 0 && o.rev <= rev && o.rev > out[o.key] {
				out[o.key] = o.rev
			}
		}
	}
	return out
}

// mayBeDeleted reports whether a delete of k may lie after revision after
// and at or below upTo: its bounds are its writer's puts around it.
func (l *writeLog) mayBeDeleted(k string, after, upTo uint64) bool {
	for _, ops := range l.ops {
		for i, o := range ops {
			if o.rev != 0 || o.key != k {
				continue
			}
			lo, hi := uint64(0), ^uint64(0)
			for j := i - 1; j >= 0 && lo == 0; j-- {
				lo = ops[j].rev
			}
			for j := i + 1; j < len(ops) && hi == ^uint64(0); j++ {
				if ops[j].rev != 0 {
					hi = ops[j].rev
				}
			}
			// The delete is in (lo, hi): it may be in (after, upTo] unless
			// it is surely at or before after, or surely past upTo.
			if hi > after+1 && lo < upTo {
				return true
			}
		}
	}
	return false
}

// casPut writes value at k with a compare-and-swap, which returns the
// revision of the write (Put does not), and logs it as writer w's.
func casPut(e *env, s kv.Store, w int, k string, value []byte, log *writeLog) error {
	for {
		cur, err := s.Get(e.ctx, k, nil)
		if errorsIs(err, kv.ErrKeyNotFound) {
			cur, err = nil, nil
		}
		if err != nil {
			return err
		}
		ok, pair, err := s.AtomicPut(e.ctx, k, value, cur, nil)
		switch {
		case errorsIs(err, kv.ErrKeyModified), errorsIs(err, kv.ErrKeyExists), errorsIs(err, kv.ErrKeyNotFound):
			continue // another writer came between
		case err != nil:
			return err
		case !ok || pair == nil || pair.Revision == 0:
			return fmt.Errorf("AtomicPut of %q: %v, %+v; want true and the written pair's revision", k, ok, pair)
		}
		log.put(w, k, pair.Revision)
		return nil
	}
}

// testEventsProgressUnderSteadyWrites writes for steadyWritesFor with
// steadyWritersPerKey writers per key, each writing every steadyWriteEvery.
const (
	steadyWritesFor     = 3 * time.Second
	steadyWritersPerKey = 3
	steadyWriteEvery    = 500 * time.Microsecond
)

// testEventsProgressUnderSteadyWrites: while two clients rewrite two keys
// as fast as they can, without a pause, the stream keeps delivering
// batches with a rising revision and both keys' recent values. A store
// that holds changes back until it can vouch for a revision must not hold
// them for ever when writes never stop.
func testEventsProgressUnderSteadyWrites(e *env) {
	_, st := e.streamer()
	p := e.key("p")
	keys := []string{p + "/a", p + "/b"}
	snap, err := st.Snapshot(e.ctx, p)
	if err != nil {
		e.Fatalf("Snapshot: %v", err)
	}
	ch, err := st.Events(e.ctx, p, snap.Revision)
	if err != nil {
		e.Fatalf("Events: %v", err)
	}
	stop := make(chan struct{})
	errs := make(chan error, steadyWritersPerKey*len(keys))
	var wg sync.WaitGroup
	for i := range steadyWritersPerKey * len(keys) {
		k, s := keys[i%len(keys)], e.store()
		wg.Go(func() {
			// Paced, so that a store with a bounded history (memory) is
			// not written past what the stream may lag; still several
			// writes of each key per round trip of a networked store.
			tick := time.NewTicker(steadyWriteEvery)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if err := s.Put(e.ctx, k, fmt.Appendf(nil, "w%d-%d", i, n), nil); err != nil {
					errs <- fmt.Errorf("writer of %q: %w", k, err)
					return
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	// Every window of the writes must bring a batch with a higher revision
	// and events of both keys.
	const window = time.Second
	var last uint64
	deadline := time.Now().Add(steadyWritesFor)
	for time.Now().Before(deadline) {
		seen := map[string]bool{}
		end := time.NewTimer(window)
		for advanced := false; !advanced || len(seen) < len(keys); {
			select {
			case b, ok := <-ch:
				if !ok || b.Err != nil {
					end.Stop()
					e.Fatalf("Events ended while writing: %v", b.Err)
				}
				for _, ev := range b.Events {
					seen[ev.Pair.Key] = true
				}
				if b.Revision > last {
					last, advanced = b.Revision, true
				}
			case err := <-errs:
				end.Stop()
				e.Fatalf("%v", err)
			case <-end.C:
				e.Fatalf("Events: no batch past revision %d with both keys within %v while two writers kept writing (keys seen: %v)", last, window, seen)
			}
		}
		end.Stop()
	}
}
