package kvtest

import (
	"github.com/regentkv/regent/kv"
)

func watchTreeCases() []testCase {
	return []testCase{
		{name: "WatchTreeInitialState", run: testWatchTreeInitial},
		{name: "WatchTreeEveryChange", run: testWatchTreeChanges},
		{name: "WatchTreeNoGap", run: testWatchTreeNoGap},
		{name: "WatchTreeMissingPrefix", run: testWatchTreeMissing},
		{name: "WatchTreeOtherClient", run: testWatchTreeOtherClient},
		{name: "WatchTreeCancelCloses", run: testWatchTreeCancel},
		{name: "WatchTreeSeesExpiry", timeout: ttlTimeout(1), run: testWatchTreeExpiry},
	}
}

// nextTree returns the next update of a tree watch and checks its envelope.
func (e *env) nextTree(ch <-chan kv.TreeUpdate, prefix string) kv.TreeUpdate {
	e.Helper()
	u := next(e, ch, updateWait, "WatchTree("+prefix+")")
	if u.Err != nil {
		e.Fatalf("WatchTree(%q) update error: %v", prefix, u.Err)
	}
	if u.Prefix != prefix {
		e.Fatalf("WatchTree update Prefix = %q, want %q", u.Prefix, prefix)
	}
	return u
}

// wantTreeIsList checks that the next update equals List(prefix) now.
func (e *env) wantTreeIsList(s kv.Store, ch <-chan kv.TreeUpdate, prefix, step string) {
	e.Helper()
	u := e.nextTree(ch, prefix)
	l, err := s.List(e.ctx, prefix, nil)
	if err != nil {
		e.Fatalf("List: %v", err)
	}
	if !samePairs(u.Pairs, l) {
		e.Fatalf("after %s: WatchTree update %s, List %s", step, fmtPairs(u.Pairs), fmtPairs(l))
	}
}

func testWatchTreeInitial(e *env) {
	s := e.store()
	w := e.key("w")
	e.mustPut(s, w, "prefix key", nil)
	e.mustPut(s, e.key("wx"), "sibling", nil)
	e.mustPut(s, e.key("wx", "a"), "sibling child", nil)
	want := map[string]string{w + "/b/d/e": "deep", w + "/a": "a", w + "/b/c": "c"}
	for k, v := range want {
		e.mustPut(s, k, v, nil)
	}
	ch, err := s.WatchTree(e.ctx, w, nil)
	if err != nil {
		e.Fatalf("WatchTree: %v", err)
	}
	u := e.nextTree(ch, w)
	e.checkPairs("first WatchTree update", u.Pairs, want)
	l := e.wantList(s, w, want)
	if !samePairs(u.Pairs, l) {
		e.Fatalf("first update %s differs from List %s", fmtPairs(u.Pairs), fmtPairs(l))
	}
}

func testWatchTreeChanges(e *env) {
	s := e.store()
	w := e.key("w")
	ch, err := s.WatchTree(e.ctx, w, nil)
	if err != nil {
		e.Fatalf("WatchTree: %v", err)
	}
	e.wantTreeIsList(s, ch, w, "start")
	steps := []struct {
		name string
		do   func() error
	}{
		{"put a", func() error { return s.Put(e.ctx, w+"/a", []byte("1"), nil) }},
		{"put b", func() error { return s.Put(e.ctx, w+"/b", []byte("2"), nil) }},
		{"update a", func() error { return s.Put(e.ctx, w+"/a", []byte("3"), nil) }},
		{"nested put", func() error { return s.Put(e.ctx, w+"/c/d/e", []byte("4"), nil) }},
		{"empty value", func() error { return s.Put(e.ctx, w+"/c/d/f", []byte{}, nil) }},
		{"delete b", func() error { return s.Delete(e.ctx, w+"/b") }},
		// A sibling and the prefix key itself are not below w: had they
		// produced an update, the next one would not match List.
		{"sibling then put", func() error {
			if err := s.Put(e.ctx, e.key("wx"), []byte("no"), nil); err != nil {
				return err
			}
			if err := s.Put(e.ctx, w, []byte("no"), nil); err != nil {
				return err
			}
			return s.Put(e.ctx, w+"/g", []byte("5"), nil)
		}},
		{"atomic put", func() error {
			p, err := s.Get(e.ctx, w+"/g", nil)
			if err == nil {
				_, _, err = s.AtomicPut(e.ctx, w+"/g", []byte("6"), p, nil)
			}
			return err
		}},
		{"delete tree c", func() error { return s.DeleteTree(e.ctx, w+"/c/d") }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			e.Fatalf("%s: %v", st.name, err)
		}
		if st.name == "delete tree c" {
			break // checked below: a backend may report it key by key
		}
		e.wantTreeIsList(s, ch, w, st.name)
	}
	want, err := s.List(e.ctx, w, nil)
	if err != nil {
		e.Fatalf("List: %v", err)
	}
	for {
		u := e.nextTree(ch, w)
		if samePairs(u.Pairs, want) {
			break
		}
		if len(u.Pairs) <= len(want) {
			e.Fatalf("after DeleteTree: update %s, want %s", fmtPairs(u.Pairs), fmtPairs(want))
		}
	}
	e.checkPairs("final update", want, map[string]string{w + "/a": "3", w + "/g": "6"})
	e.mustPut(s, w+"/h", "7", nil)
	e.wantTreeIsList(s, ch, w, "put after DeleteTree")
}

// testWatchTreeNoGap writes right after WatchTree returns, before reading
// anything: the write is in the first update or in the next one.
func testWatchTreeNoGap(e *env) {
	s := e.store()
	w := e.key("w")
	for i := range 5 {
		ch, err := s.WatchTree(e.ctx, w, nil)
		if err != nil {
			e.Fatalf("WatchTree: %v", err)
		}
		k := w + "/" + string(rune('a'+i))
		e.mustPut(s, k, "x", nil)
		u := e.nextTree(ch, w)
		if len(u.Pairs) == i {
			u = e.nextTree(ch, w)
		}
		if len(u.Pairs) != i+1 || u.Pairs[i].Key != k {
			e.Fatalf("round %d: update %s, want %d pairs ending with %q", i, fmtPairs(u.Pairs), i+1, k)
		}
	}
}

func testWatchTreeMissing(e *env) {
	s := e.store()
	w := e.key("none")
	// Something is written first, so that the store's revision is not 0.
	e.mustPut(s, e.key("elsewhere"), "x", nil)
	var before uint64
	st, streams := s.(kv.Streamer)
	if streams {
		var err error
		if before, err = st.Revision(e.ctx); err != nil {
			e.Fatalf("Revision: %v", err)
		}
	}
	ch, err := s.WatchTree(e.ctx, w, nil)
	if err != nil {
		e.Fatalf("WatchTree(missing): %v", err)
	}
	u := e.nextTree(ch, w)
	if len(u.Pairs) != 0 {
		e.Fatalf("first update of a missing prefix = %s, want empty", fmtPairs(u.Pairs))
	}
	// The revision an empty state was read at is the store's, as for any
	// other state: not 0 on one backend and 1 on another.
	if streams && u.Revision < before {
		e.Fatalf("first update of a missing prefix has Revision %d, want at least the store's revision %d read before the watch", u.Revision, before)
	}
	e.mustPut(s, w+"/x/y", "first", nil)
	u = e.nextTree(ch, w)
	e.checkPairs("update after the first put", u.Pairs, map[string]string{w + "/x/y": "first"})
}

func testWatchTreeOtherClient(e *env) {
	watcher, writer := e.store(), e.store()
	w := e.key("w")
	ch, err := watcher.WatchTree(e.ctx, w, nil)
	if err != nil {
		e.Fatalf("WatchTree: %v", err)
	}
	e.nextTree(ch, w)
	e.mustPut(writer, w+"/r", "remote", nil)
	e.checkPairs("remote put", e.nextTree(ch, w).Pairs, map[string]string{w + "/r": "remote"})
	if err := writer.Delete(e.ctx, w+"/r"); err != nil {
		e.Fatalf("Delete: %v", err)
	}
	e.checkPairs("remote delete", e.nextTree(ch, w).Pairs, map[string]string{})
}

func testWatchTreeCancel(e *env) {
	s := e.store()
	ctx, cancel := e.sub()
	ch, err := s.WatchTree(ctx, e.prefix, nil)
	if err != nil {
		e.Fatalf("WatchTree: %v", err)
	}
	e.nextTree(ch, e.prefix)
	cancel()
	waitClosed(e, ch, closeWait, "WatchTree after cancel")
}

func testWatchTreeExpiry(e *env) {
	s := e.store()
	w := e.key("w")
	e.mustPut(s, w+"/stays", "1", nil)
	e.mustPut(s, w+"/goes", "2", &kv.WriteOptions{TTL: e.ttl()})
	ch, err := s.WatchTree(e.ctx, w, nil)
	if err != nil {
		e.Fatalf("WatchTree: %v", err)
	}
	e.checkPairs("first update", e.nextTree(ch, w).Pairs, map[string]string{w + "/stays": "1", w + "/goes": "2"})
	u := next(e, ch, e.overdue(), "WatchTree expiry")
	if u.Err != nil {
		e.Fatalf("WatchTree update error: %v", u.Err)
	}
	e.checkPairs("update after the expiry", u.Pairs, map[string]string{w + "/stays": "1"})
}
