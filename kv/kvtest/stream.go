package kvtest

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/regentkv/regent/kv"
)

// progressWait bounds the wait for a progress batch: the contract says one
// per second while idle, plus room for slow CI.
const progressWait = 3 * time.Second

func streamCases(h Harness) []testCase {
	cs := []testCase{
		{name: "StreamSnapshot", run: testSnapshot},
		{name: "StreamEventsInOrder", run: testEventsInOrder},
		{name: "StreamEventsResume", run: testEventsResume},
		{name: "StreamEventsDeleteTree", run: testEventsDeleteTree},
		{name: "StreamEventsCompacted", serial: true, run: testEventsCompacted},
		{name: "StreamProgress", run: testProgress},
		{name: "StreamProgressIdleStore", serial: true, run: testProgressIdleStore},
		{name: "StreamCancelCloses", run: testEventsCancel},
		{name: "StreamInvalidPrefix", run: testStreamInvalidPrefix},
		{name: "StreamRevisionMonotonic", run: testRevisionMonotonic},
		{name: "StreamEventsConcurrentWriters", run: testEventsConcurrentWriters},
		{name: "StreamEventsProgressUnderSteadyWrites", run: testEventsProgressUnderSteadyWrites},
	}
	if h.StreamNoHistory {
		cs = append(cs, testCase{name: "StreamEventsBurst", run: testEventsBurstMerged})
	} else {
		cs = append(cs, testCase{name: "StreamEventsBurst", run: testEventsBurst})
	}
	return cs
}

// collectEvents reads batches until n events have arrived, checking that
// batches carry no error and that revisions only grow.
func collectEvents(e *env, ch <-chan kv.EventBatch, n int) []kv.Event {
	e.Helper()
	return collectEventsAfter(e, nil, ch, n)
}

// collectEventsAfter is collectEvents that first takes the batches already
// read from ch.
func collectEventsAfter(e *env, read []kv.EventBatch, ch <-chan kv.EventBatch, n int) []kv.Event {
	e.Helper()
	var evs []kv.Event
	var lastBatch, lastEv uint64
	progress := time.Now()
	for len(evs) < n {
		if time.Since(progress) > updateWait {
			e.Fatalf("Events: %d of %d events within %v, then only progress batches: %s", len(evs), n, updateWait, fmtEvents(evs))
		}
		var b kv.EventBatch
		if len(read) > 0 {
			b, read = read[0], read[1:]
		} else {
			b = next(e, ch, updateWait, "Events")
		}
		if len(b.Events) > 0 {
			progress = time.Now()
		}
		if b.Err != nil {
			e.Fatalf("Events batch error: %v", b.Err)
		}
		if b.Revision < lastBatch {
			e.Fatalf("batch revision went back from %d to %d", lastBatch, b.Revision)
		}
		lastBatch = b.Revision
		for _, ev := range b.Events {
			if ev.Pair == nil {
				e.Fatalf("event %v with a nil Pair", ev.Type)
			}
			if ev.Pair.Revision < lastEv || ev.Pair.Revision == 0 || ev.Pair.Revision > b.Revision {
				e.Fatalf("event %v %q revision %d: previous %d, batch %d", ev.Type, ev.Pair.Key, ev.Pair.Revision, lastEv, b.Revision)
			}
			lastEv = ev.Pair.Revision
			evs = append(evs, ev)
		}
	}
	if len(evs) != n {
		e.Fatalf("got %d events, want %d: %s", len(evs), n, fmtEvents(evs))
	}
	return evs
}

func fmtEvents(evs []kv.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%v %s=%q@%d ", ev.Type, ev.Pair.Key, ev.Pair.Value, ev.Pair.Revision)
	}
	return b.String()
}

type wantEvent struct {
	typ   kv.EventType
	key   string
	value string
}

func checkEvents(e *env, got []kv.Event, want []wantEvent) {
	e.Helper()
	for i, w := range want {
		g := got[i]
		switch {
		case g.Type != w.typ || g.Pair.Key != w.key:
			e.Fatalf("event %d: %v %q, want %v %q", i, g.Type, g.Pair.Key, w.typ, w.key)
		case w.typ == kv.EventPut && (g.Pair.Value == nil || string(g.Pair.Value) != w.value):
			e.Fatalf("event %d (%s): value %q, want %q", i, w.key, g.Pair.Value, w.value)
		case w.typ == kv.EventDelete && (g.Pair.Value != nil || g.Pair.LastIndex != 0):
			e.Fatalf("delete event %d (%s): Value %q LastIndex %d, want nil and 0", i, w.key, g.Pair.Value, g.Pair.LastIndex)
		}
	}
}

func testSnapshot(e *env) {
	s, st := e.streamer()
	want := map[string]string{e.key("s", "a"): "a", e.key("s", "b", "c"): "c"}
	for k, v := range want {
		e.mustPut(s, k, v, nil)
	}
	e.mustPut(s, e.key("sx"), "sibling", nil)
	snap, err := st.Snapshot(e.ctx, e.key("s"))
	if err != nil {
		e.Fatalf("Snapshot: %v", err)
	}
	e.checkPairs("Snapshot", snap.Pairs, want)
	l := e.wantList(s, e.key("s"), want)
	if !samePairs(snap.Pairs, l) {
		e.Fatalf("Snapshot %s differs from List %s", fmtPairs(snap.Pairs), fmtPairs(l))
	}
	for _, p := range snap.Pairs {
		if p.Revision == 0 || p.Revision > snap.Revision {
			e.Fatalf("pair %q revision %d, snapshot revision %d", p.Key, p.Revision, snap.Revision)
		}
	}
	rev, err := st.Revision(e.ctx)
	if err != nil || rev < snap.Revision {
		e.Fatalf("Revision() = %d, %v; want >= snapshot revision %d", rev, err, snap.Revision)
	}
}

// testEventsInOrder makes one change at a time and waits for its event, so
// that it holds for backends whose streams re-arm between changes.
func testEventsInOrder(e *env) { eventsSequence(e, true) }

// testEventsBurst makes the same changes without waiting: a store with
// history delivers them all, in order.
func testEventsBurst(e *env) { eventsSequence(e, false) }

// testEventsBurstMerged is the burst on a store without history, which may
// merge changes to one key made faster than it reports them: what is
// delivered, applied in order, must end in the store's final state, with
// nothing from outside the prefix and revisions that never go back.
func testEventsBurstMerged(e *env) {
	_, st := e.streamer()
	writer := e.store()
	p := e.key("p")
	snap, err := st.Snapshot(e.ctx, p)
	if err != nil {
		e.Fatalf("Snapshot: %v", err)
	}
	ch, err := st.Events(e.ctx, p, snap.Revision)
	if err != nil {
		e.Fatalf("Events: %v", err)
	}
	for i, do := range []func() error{
		func() error { return writer.Put(e.ctx, p+"/a", []byte("1"), nil) },
		func() error { return writer.Put(e.ctx, e.key("px"), []byte("sibling"), nil) },
		func() error { return writer.Put(e.ctx, p, []byte("prefix key"), nil) },
		func() error { return writer.Put(e.ctx, p+"/b/c", []byte("2"), nil) },
		func() error { return writer.Put(e.ctx, p+"/a", []byte("3"), nil) },
		func() error { return writer.Delete(e.ctx, p+"/a") },
		func() error { return writer.Put(e.ctx, p+"/d", []byte{}, nil) },
		func() error { return writer.Put(e.ctx, p+"/b/c", []byte("4"), nil) },
	} {
		if err := do(); err != nil {
			e.Fatalf("step %d: %v", i, err)
		}
	}
	want := map[string]string{p + "/b/c": "4", p + "/d": ""}
	state := map[string]string{}
	var lastRev uint64
	deadline := time.Now().Add(updateWait)
	for !maps.Equal(state, want) {
		if time.Now().After(deadline) {
			e.Fatalf("Events: state %v after %v, want %v", state, updateWait, want)
		}
		b := next(e, ch, updateWait, "Events")
		if b.Err != nil {
			e.Fatalf("Events batch error: %v", b.Err)
		}
		for _, ev := range b.Events {
			k := ev.Pair.Key
			if !kv.IsBelow(k, p) {
				e.Fatalf("event %v for %q, which is not below %q", ev.Type, k, p)
			}
			if ev.Pair.Revision < lastRev {
				e.Fatalf("event revision went back from %d to %d", lastRev, ev.Pair.Revision)
			}
			lastRev = ev.Pair.Revision
			switch ev.Type {
			case kv.EventPut:
				state[k] = string(ev.Pair.Value)
			case kv.EventDelete:
				delete(state, k)
			}
		}
	}
}

func eventsSequence(e *env, stepwise bool) {
	s, st := e.streamer()
	writer := e.store()
	p := e.key("p")
	snap, err := st.Snapshot(e.ctx, p)
	if err != nil {
		e.Fatalf("Snapshot: %v", err)
	}
	ch, err := st.Events(e.ctx, p, snap.Revision)
	if err != nil {
		e.Fatalf("Events: %v", err)
	}
	put := func(k, v string) func() error {
		return func() error { return writer.Put(e.ctx, k, []byte(v), nil) }
	}
	steps := []struct {
		do   func() error
		want []wantEvent // nil: the change is not below p
	}{
		{put(p+"/a", "1"), []wantEvent{{kv.EventPut, p + "/a", "1"}}},
		{put(e.key("px"), "sibling"), nil},
		{put(p, "prefix key"), nil},
		{put(p+"/b/c", "2"), []wantEvent{{kv.EventPut, p + "/b/c", "2"}}},
		{put(p+"/a", "3"), []wantEvent{{kv.EventPut, p + "/a", "3"}}},
		{func() error { return writer.Delete(e.ctx, p+"/a") }, []wantEvent{{kv.EventDelete, p + "/a", ""}}},
		{func() error {
			_, _, err := writer.AtomicPut(e.ctx, p+"/d", []byte{}, nil, nil)
			return err
		}, []wantEvent{{kv.EventPut, p + "/d", ""}}},
	}
	var got, want []kv.Event
	var wantAll []wantEvent
	for i, st := range steps {
		if err := st.do(); err != nil {
			e.Fatalf("step %d: %v", i, err)
		}
		wantAll = append(wantAll, st.want...)
		if i == 0 {
			putA := e.mustGet(s, p+"/a")
			want = append(want, kv.Event{Type: kv.EventPut, Pair: putA})
		}
		if stepwise && len(st.want) > 0 {
			evs := collectEvents(e, ch, len(st.want))
			checkEvents(e, evs, st.want)
			got = append(got, evs...)
		}
	}
	if !stepwise {
		got = collectEvents(e, ch, len(wantAll))
		checkEvents(e, got, wantAll)
	}
	if a := want[0].Pair; got[0].Pair.LastIndex != a.LastIndex || got[0].Pair.Revision != a.Revision {
		e.Fatalf("put event index %d rev %d, Get says %d rev %d", got[0].Pair.LastIndex, got[0].Pair.Revision, a.LastIndex, a.Revision)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Pair.Revision <= got[i-1].Pair.Revision {
			e.Fatalf("separate writes share or reverse revisions: %d then %d", got[i-1].Pair.Revision, got[i].Pair.Revision)
		}
	}
}

func testEventsResume(e *env) {
	s, st := e.streamer()
	p := e.key("p")
	for _, v := range []string{"1", "2", "3", "4"} {
		e.mustPut(s, p+"/"+v, v, nil)
	}
	from := e.mustGet(s, p+"/2").Revision
	ch, err := st.Events(e.ctx, p, from)
	if err != nil {
		e.Fatalf("Events(after %d): %v", from, err)
	}
	var read []kv.EventBatch
	if e.h.StreamNoHistory {
		// Either the typed refusal, or the replay checked below.
		b := next(e, ch, updateWait, "Events from an older revision")
		for b.Err == nil && len(b.Events) == 0 {
			b = next(e, ch, updateWait, "Events from an older revision")
		}
		if b.Err != nil {
			var ce *kv.CompactedError
			if !errors.As(b.Err, &ce) {
				e.Fatalf("Events from an older revision: %v, want a replay or a *kv.CompactedError", b.Err)
			}
			waitClosed(e, ch, closeWait, "Events after ErrCompacted")
			return
		}
		read = append(read, b)
	}
	got := collectEventsAfter(e, read, ch, 2)
	checkEvents(e, got, []wantEvent{{kv.EventPut, p + "/3", "3"}, {kv.EventPut, p + "/4", "4"}})
	e.mustPut(s, p+"/5", "5", nil)
	checkEvents(e, collectEvents(e, ch, 1), []wantEvent{{kv.EventPut, p + "/5", "5"}})
}

func testEventsDeleteTree(e *env) {
	s, st := e.streamer()
	p := e.key("p")
	e.mustPut(s, p+"/a", "a", nil)
	e.mustPut(s, p+"/b/c", "c", nil)
	rev, err := st.Revision(e.ctx)
	if err != nil {
		e.Fatalf("Revision: %v", err)
	}
	ch, err := st.Events(e.ctx, p, rev)
	if err != nil {
		e.Fatalf("Events: %v", err)
	}
	if err := s.DeleteTree(e.ctx, p); err != nil {
		e.Fatalf("DeleteTree: %v", err)
	}
	got := collectEvents(e, ch, 2)
	keys := map[string]bool{}
	for _, ev := range got {
		if ev.Type != kv.EventDelete {
			e.Fatalf("DeleteTree produced a %v event for %q", ev.Type, ev.Pair.Key)
		}
		keys[ev.Pair.Key] = true
	}
	if !keys[p+"/a"] || !keys[p+"/b/c"] {
		e.Fatalf("DeleteTree events for %v, want %q and %q", keys, p+"/a", p+"/b/c")
	}
}

// testEventsCompacted runs alone: compaction is store-wide and would pull
// the history from under the other stream cases.
func testEventsCompacted(e *env) {
	s, st := e.streamer()
	p := e.key("p")
	e.mustPut(s, p+"/a", "1", nil)
	old, err := st.Revision(e.ctx)
	if err != nil {
		e.Fatalf("Revision: %v", err)
	}
	e.mustPut(s, p+"/a", "2", nil)
	e.mustPut(s, p+"/a", "3", nil)
	now, err := st.Revision(e.ctx)
	if err != nil {
		e.Fatalf("Revision: %v", err)
	}
	e.h.Compact(e.T, s, now)
	ch, err := st.Events(e.ctx, p, old)
	if err != nil {
		e.Fatalf("Events from a compacted revision: %v; want a channel with an ErrCompacted batch", err)
	}
	b := next(e, ch, updateWait, "Events from a compacted revision")
	var ce *kv.CompactedError
	if !errors.Is(b.Err, kv.ErrCompacted) || !errors.As(b.Err, &ce) || len(b.Events) != 0 {
		e.Fatalf("first batch from a compacted revision: %d events, error %v; want a *kv.CompactedError", len(b.Events), b.Err)
	}
	if ce.Requested != old || ce.Compacted < old {
		e.Fatalf("CompactedError{Requested %d, Compacted %d}; want Requested %d, Compacted >= it", ce.Requested, ce.Compacted, old)
	}
	waitClosed(e, ch, closeWait, "Events after ErrCompacted")
	ch, err = st.Events(e.ctx, p, now)
	if err != nil {
		e.Fatalf("Events from the compaction revision: %v", err)
	}
	e.mustPut(s, p+"/a", "4", nil)
	checkEvents(e, collectEvents(e, ch, 1), []wantEvent{{kv.EventPut, p + "/a", "4"}})
}

func testProgress(e *env) {
	_, st := e.streamer()
	snap, err := st.Snapshot(e.ctx, e.key("idle"))
	if err != nil {
		e.Fatalf("Snapshot: %v", err)
	}
	ch, err := st.Events(e.ctx, e.key("idle"), snap.Revision)
	if err != nil {
		e.Fatalf("Events: %v", err)
	}
	e.mustPut(e.store(), e.key("elsewhere"), "x", nil)
	rev, err := st.Revision(e.ctx)
	if err != nil {
		e.Fatalf("Revision: %v", err)
	}
	deadline := time.Now().Add(progressWait + time.Second)
	for {
		b := next(e, ch, time.Until(deadline), "progress batch")
		if b.Err != nil || len(b.Events) != 0 {
			e.Fatalf("idle prefix got batch %+v, want progress only", b)
		}
		if b.Revision >= rev {
			break
		}
	}
}

// testProgressIdleStore: with nothing written anywhere (a serial case, so
// no other case writes meanwhile), the stream still sends a progress notice
// at least every second, at the revision it started from. Readers use these
// to tell a quiet store from a dead connection (informer.Check).
func testProgressIdleStore(e *env) {
	_, st := e.streamer()
	snap, err := st.Snapshot(e.ctx, e.key("idle"))
	if err != nil {
		e.Fatalf("Snapshot: %v", err)
	}
	ch, err := st.Events(e.ctx, e.key("idle"), snap.Revision)
	if err != nil {
		e.Fatalf("Events: %v", err)
	}
	start := time.Now()
	for i := range 3 {
		b := next(e, ch, 2*time.Second, fmt.Sprintf("progress notice %d on an idle store", i+1))
		if b.Err != nil || len(b.Events) != 0 || b.Revision < snap.Revision {
			e.Fatalf("idle store: got batch %+v, want a progress notice at revision >= %d", b, snap.Revision)
		}
	}
	if took := time.Since(start); took > 3*time.Second+500*time.Millisecond {
		e.Errorf("3 progress notices took %v on an idle store, want one at least every second", took)
	}
}

func testEventsCancel(e *env) {
	_, st := e.streamer()
	ctx, cancel := e.sub()
	rev, err := st.Revision(e.ctx)
	if err != nil {
		e.Fatalf("Revision: %v", err)
	}
	ch, err := st.Events(ctx, e.prefix, rev)
	if err != nil {
		e.Fatalf("Events: %v", err)
	}
	cancel()
	waitClosed(e, ch, closeWait, "Events after cancel")
}

func testStreamInvalidPrefix(e *env) {
	_, st := e.streamer()
	for name, k := range e.invalidKeys() {
		if _, err := st.Snapshot(e.ctx, k); !errors.Is(err, kv.ErrInvalidKey) {
			e.Errorf("Snapshot(%s %q): got %v, want %v", name, k, err, kv.ErrInvalidKey)
		}
		ch, err := st.Events(e.ctx, k, 0)
		if !errors.Is(err, kv.ErrInvalidKey) || ch != nil {
			e.Errorf("Events(%s %q): got %v, %v; want nil, %v", name, k, ch, err, kv.ErrInvalidKey)
		}
	}
}

func testRevisionMonotonic(e *env) {
	s, st := e.streamer()
	k := e.key("k")
	r1, err := st.Revision(e.ctx)
	if err != nil {
		e.Fatalf("Revision: %v", err)
	}
	e.mustPut(s, k, "v", nil)
	p := e.mustGet(s, k)
	r2, err := st.Revision(e.ctx)
	if err != nil {
		e.Fatalf("Revision: %v", err)
	}
	if p.Revision <= r1 || p.Revision > r2 {
		e.Fatalf("Revision %d, then a put at %d, then Revision %d: want strictly after and at most", r1, p.Revision, r2)
	}
}
