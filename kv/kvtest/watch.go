package kvtest

import (
	"runtime"
	"time"

	"github.com/regentkv/regent/kv"
)

// updateWait bounds how long a change may take to reach a watcher.
const updateWait = 5 * time.Second

// closeWait bounds how long a stream may take to close once its ctx ends.
const closeWait = 2 * time.Second

func watchCases() []testCase {
	return []testCase{
		{name: "WatchMissingKeyLifecycle", run: testWatchLifecycle},
		{name: "WatchExistingKey", run: testWatchExisting},
		{name: "WatchOtherClient", run: testWatchOtherClient},
		{name: "WatchIgnoresOtherKeys", run: testWatchIgnoresOthers},
		{name: "WatchKeyForms", run: testWatchKeyForms},
		{name: "WatchSeesExpiry", timeout: ttlTimeout(1), run: testWatchExpiry},
		{name: "WatchSeesDeleteTree", run: testWatchDeleteTree},
		{name: "WatchCancelCloses", run: testWatchCancel},
		{name: "WatchSlowReaderCancel", run: testWatchSlowReader},
		{name: "WatchGoroutinesExit", serial: true, run: testWatchGoroutines},
	}
}

// nextKey returns the next update of a key watch and checks its envelope.
func (e *env) nextKey(ch <-chan kv.KeyUpdate, key string) kv.KeyUpdate {
	e.Helper()
	u := next(e, ch, updateWait, "Watch("+key+")")
	if u.Err != nil {
		e.Fatalf("Watch(%q) update error: %v", key, u.Err)
	}
	if u.Key != key {
		e.Fatalf("Watch update Key = %q, want %q", u.Key, key)
	}
	return u
}

// wantKeyUpdate checks the next update: value "" with deleted=true means a
// nil Pair.
func (e *env) wantKeyUpdate(ch <-chan kv.KeyUpdate, key, value string, deleted bool) *kv.KVPair {
	e.Helper()
	u := e.nextKey(ch, key)
	switch {
	case deleted && u.Pair != nil:
		e.Fatalf("Watch(%q): got {%q, %q}, want a nil Pair (deleted)", key, u.Pair.Key, u.Pair.Value)
	case !deleted && u.Pair == nil:
		e.Fatalf("Watch(%q): got a nil Pair, want value %q", key, value)
	case !deleted && (u.Pair.Key != key || string(u.Pair.Value) != value):
		e.Fatalf("Watch(%q): got {%q, %q}, want {%q, %q}", key, u.Pair.Key, u.Pair.Value, key, value)
	}
	return u.Pair
}

func testWatchLifecycle(e *env) {
	s := e.store()
	k := e.key("k")
	ch, err := s.Watch(e.ctx, k, nil)
	if err != nil {
		e.Fatalf("Watch(missing): %v", err)
	}
	e.wantKeyUpdate(ch, k, "", true)
	e.mustPut(s, k, "created", nil)
	p := e.wantKeyUpdate(ch, k, "created", false)
	if g := e.mustGet(s, k); g.LastIndex != p.LastIndex {
		e.Fatalf("watched LastIndex %d, Get says %d", p.LastIndex, g.LastIndex)
	}
	e.mustPut(s, k, "updated", nil)
	e.wantKeyUpdate(ch, k, "updated", false)
	if err := s.Delete(e.ctx, k); err != nil {
		e.Fatalf("Delete: %v", err)
	}
	e.wantKeyUpdate(ch, k, "", true)
	e.mustPut(s, k, "re-created", nil)
	e.wantKeyUpdate(ch, k, "re-created", false)
}

func testWatchExisting(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "current", nil)
	g := e.mustGet(s, k)
	ch, err := s.Watch(e.ctx, k, nil)
	if err != nil {
		e.Fatalf("Watch: %v", err)
	}
	if p := e.wantKeyUpdate(ch, k, "current", false); p.LastIndex != g.LastIndex {
		e.Fatalf("first update LastIndex %d, Get says %d", p.LastIndex, g.LastIndex)
	}
	e.mustPut(s, k, "next", nil)
	e.wantKeyUpdate(ch, k, "next", false)
}

func testWatchOtherClient(e *env) {
	watcher, writer := e.store(), e.store()
	k := e.key("k")
	ch, err := watcher.Watch(e.ctx, k, nil)
	if err != nil {
		e.Fatalf("Watch: %v", err)
	}
	e.wantKeyUpdate(ch, k, "", true)
	e.mustPut(writer, k, "remote", nil)
	e.wantKeyUpdate(ch, k, "remote", false)
	if err := writer.Delete(e.ctx, k); err != nil {
		e.Fatalf("Delete: %v", err)
	}
	e.wantKeyUpdate(ch, k, "", true)
}

// testWatchIgnoresOthers writes a child, a byte-prefix sibling and another
// key before the watched key: the first update after the initial one must
// be the watched key's.
func testWatchIgnoresOthers(e *env) {
	s := e.store()
	k := e.key("k")
	ch, err := s.Watch(e.ctx, k, nil)
	if err != nil {
		e.Fatalf("Watch: %v", err)
	}
	e.wantKeyUpdate(ch, k, "", true)
	e.mustPut(s, k+"/child", "child", nil)
	e.mustPut(s, k+"x", "sibling", nil)
	e.mustPut(s, e.key("other"), "other", nil)
	e.mustPut(s, k, "mine", nil)
	e.wantKeyUpdate(ch, k, "mine", false)
}

func testWatchKeyForms(e *env) {
	s := e.store()
	k := e.key("k")
	ch, err := s.Watch(e.ctx, "/"+k+"/", nil)
	if err != nil {
		e.Fatalf("Watch: %v", err)
	}
	e.wantKeyUpdate(ch, k, "", true)
	e.mustPut(s, "/"+k, "v", nil)
	e.wantKeyUpdate(ch, k, "v", false)
}

func testWatchExpiry(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "short-lived", &kv.WriteOptions{TTL: e.ttl()})
	ch, err := s.Watch(e.ctx, k, nil)
	if err != nil {
		e.Fatalf("Watch: %v", err)
	}
	e.wantKeyUpdate(ch, k, "short-lived", false)
	u := next(e, ch, e.overdue(), "Watch expiry")
	if u.Err != nil || u.Pair != nil {
		e.Fatalf("after expiry got update {Pair %v, Err %v}, want a nil Pair", u.Pair, u.Err)
	}
}

func testWatchCancel(e *env) {
	s := e.store()
	k := e.key("k")
	ctx, cancel := e.sub()
	ch, err := s.Watch(ctx, k, nil)
	if err != nil {
		e.Fatalf("Watch: %v", err)
	}
	e.wantKeyUpdate(ch, k, "", true)
	cancel()
	waitClosed(e, ch, closeWait, "Watch after cancel")
	// The store is still usable, and a new watch works.
	ch2, err := s.Watch(e.ctx, k, nil)
	if err != nil {
		e.Fatalf("second Watch: %v", err)
	}
	e.wantKeyUpdate(ch2, k, "", true)
}

// testWatchSlowReader: the reader takes nothing while changes pile up, then
// cancels. The watch must end anyway (libkv #223: the sender blocked
// forever on an unbuffered channel).
func testWatchSlowReader(e *env) {
	s := e.store()
	k := e.key("k")
	ctx, cancel := e.sub()
	ch, err := s.Watch(ctx, k, nil)
	if err != nil {
		e.Fatalf("Watch: %v", err)
	}
	tch, err := s.WatchTree(ctx, e.prefix, nil)
	if err != nil {
		e.Fatalf("WatchTree: %v", err)
	}
	for i := range 20 {
		e.mustPut(s, k, string(rune('a'+i)), nil)
	}
	cancel()
	waitClosed(e, ch, closeWait, "unread Watch after cancel")
	waitClosed(e, tch, closeWait, "unread WatchTree after cancel")
}

// testWatchGoroutines runs alone: it counts goroutines before a watch and
// after its cancellation. A warm-up watch first lets the driver start any
// goroutines it keeps for its lifetime.
func testWatchGoroutines(e *env) {
	s := e.store()
	k := e.key("k")
	cycle := func() {
		ctx, cancel := e.sub()
		ch, err := s.Watch(ctx, k, nil)
		if err != nil {
			e.Fatalf("Watch: %v", err)
		}
		tch, err := s.WatchTree(ctx, e.prefix, nil)
		if err != nil {
			e.Fatalf("WatchTree: %v", err)
		}
		e.wantKeyUpdate(ch, k, "", true)
		next(e, tch, updateWait, "WatchTree")
		cancel()
		waitClosed(e, ch, closeWait, "Watch after cancel")
		waitClosed(e, tch, closeWait, "WatchTree after cancel")
	}
	cycle()
	before := runtime.NumGoroutine()
	const cycles = 10
	for range cycles {
		cycle()
	}
	// A backend in the same process (an embedded server) has goroutines of
	// its own that come and go; a leak shows as growth with the number of
	// cycles (two watches each), so a few extra are tolerated.
	now := before
	deadline := time.Now().Add(5 * time.Second)
	for {
		now = runtime.NumGoroutine()
		if now-before < cycles/2 {
			break
		}
		if time.Now().After(deadline) {
			e.Fatalf("goroutines: %d before %d watch cycles, %d after: the cancelled watches leaked", before, cycles, now)
		}
		e.pause(20 * time.Millisecond)
	}
	e.Logf("goroutines: %d before %d watch cycles, %d after", before, cycles, now)
}

func testWatchDeleteTree(e *env) {
	s := e.store()
	k := e.key("a", "b", "c")
	e.mustPut(s, k, "deep", nil)
	ch, err := s.Watch(e.ctx, k, nil)
	if err != nil {
		e.Fatalf("Watch: %v", err)
	}
	e.wantKeyUpdate(ch, k, "deep", false)
	if err := s.DeleteTree(e.ctx, e.key("a")); err != nil {
		e.Fatalf("DeleteTree: %v", err)
	}
	e.wantKeyUpdate(ch, k, "", true)
}
