package informertest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
)

// Run runs every case of the suite against h, each as a subtest.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Compact == nil {
		t.Fatalf("informertest.Harness %q: New and Compact are required", h.Name)
	}
	cases := []suiteCase{
		{"InitialSync", testInitialSync},
		{"OrderPerKey", testOrderPerKey},
		{"SlowHandler", testSlowHandler},
		{"LateHandler", testLateHandler},
		{"Remove", testRemove},
		{"Resync", testResync},
		{"ResumeAfterCut", testResumeAfterCut},
		{"CompactionRelist", testCompactionRelist},
		{"RandomWriters", testRandomWriters},
		{"ReadYourWrites", testReadYourWrites},
	}
	if h.Restart != nil {
		cases = append(cases, suiteCase{"ServerRestart", testServerRestart})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.f(t, h) })
	}
}

type suiteCase struct {
	name string
	f    func(*testing.T, Harness)
}

func wantView(t testing.TB, what string, got func() map[string]string, want map[string]string) {
	t.Helper()
	var last map[string]string
	poll.UntilFunc(t, 30*time.Second, func() string { return what + ": " + diff(last, want) }, func() bool {
		last = got()
		return equalMaps(last, want)
	})
}

func testInitialSync(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	want := make(map[string]string)
	for i := range 50 {
		k := fmt.Sprintf("%s/k%02d", p, i)
		put(t, s, k, fmt.Sprint("v", i))
		want[k] = fmt.Sprint("v", i)
	}
	put(t, s, p+"x/outside", "no") // shares the prefix's bytes, not its directory
	rec := newRecorder()
	inf := start(t, s, informer.Config[string]{Prefix: p}, rec.handler("rec"))
	inf.sync(t)
	if got := inf.snapshot(); !equalMaps(got, want) {
		t.Fatalf("cache after sync: %s", diff(got, want))
	}
	if inf.LastSyncedRevision() == 0 {
		t.Errorf("LastSyncedRevision = 0 after sync, want the listed revision")
	}
	wantView(t, "handler view", rec.snapshot, want)
	rec.mu.Lock()
	initial := rec.initial
	rec.mu.Unlock()
	if initial != len(want) {
		t.Errorf("%d adds with isInitialList, want %d", initial, len(want))
	}
	rec.check(t)
}

func testOrderPerKey(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	rec := newRecorder()
	inf := start(t, s, informer.Config[string]{Prefix: p}, rec.handler("rec"))
	inf.sync(t)
	keys := []string{p + "/a", p + "/b", p + "/c/d"}
	want := make(map[string][]string)
	for _, k := range keys {
		for i := range 4 {
			v := fmt.Sprint(k, "#", i)
			put(t, s, k, v)
			if i == 0 {
				want[k] = append(want[k], "+"+v)
			} else {
				want[k] = append(want[k], "~"+v)
			}
		}
		del(t, s, k)
		want[k] = append(want[k], "-"+fmt.Sprint(k, "#", 3))
		put(t, s, k, "again")
		want[k] = append(want[k], "+again")
	}
	inf.catchUp(t, s)
	for _, k := range keys {
		poll.UntilFunc(t, 10*time.Second, func() string {
			return fmt.Sprintf("history of %s: %v, want a subsequence of %v ending in again", k, rec.hist(k), want[k])
		}, func() bool {
			got := rec.hist(k)
			return len(got) > 0 && strings.HasSuffix(got[len(got)-1], "again")
		})
		// Backends may coalesce changes (the handler sees the latest state
		// at least once), never reorder them: what it saw is a subsequence.
		if got := rec.hist(k); !subsequence(values(got), values(want[k])) {
			t.Errorf("history of %s: %v, not a subsequence of %v", k, got, want[k])
		}
	}
	rec.check(t)
}

// values turns a history into its sequence of states: a value, or "-" for
// absent (a delete repeats the last value the handler saw, which on a
// backend that coalesces changes need not be the last one written).
func values(h []string) []string {
	out := make([]string, len(h))
	for i, s := range h {
		if strings.HasPrefix(s, "-") {
			out[i] = "-"
			continue
		}
		out[i] = strings.TrimLeft(s, "+~=")
	}
	return out
}

func subsequence(got, of []string) bool {
	i := 0
	for _, g := range got {
		for i < len(of) && of[i] != g {
			i++
		}
		if i == len(of) {
			return false
		}
		i++
	}
	return true
}

func testSlowHandler(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	slow, fast := newRecorder(), newRecorder()
	gate := make(chan struct{})
	slow.gate = gate
	m := informer.NewMetrics()
	inf := start(t, s, informer.Config[string]{Prefix: p, HandlerQueueSize: 2, Metrics: m, Name: p},
		slow.handler("slow"), fast.handler("fast"))
	var release sync.Once
	// Registered after start, so it runs first: a failing case must not
	// leave the slow handler stuck and Run unable to return.
	t.Cleanup(func() { release.Do(func() { close(gate) }) })
	inf.sync(t)
	// The slow handler must have had its (empty) first list before the
	// writes: until then its changes are folded into that first catch-up
	// and its queue never overflows (2 runs in 300 saw 0 catch-ups).
	select {
	case <-inf.regs[0].Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("the slow handler did not sync within 10s")
	}
	for i := range 40 {
		k := fmt.Sprintf("%s/k%d", p, i%7)
		if i%5 == 4 {
			_ = s.Delete(testCtx(t, 10*time.Second), k)
			continue
		}
		put(t, s, k, fmt.Sprint(i))
	}
	inf.catchUp(t, s)
	want := listed(t, s, p)
	// The slow handler is stuck in its first call: the others go on.
	wantView(t, "fast handler while the slow one is stuck", fast.snapshot, want)
	release.Do(func() { close(gate) })
	wantView(t, "slow handler after catching up", slow.snapshot, want)
	if n := testutil.ToFloat64(m.CatchUps(p, "slow")); n < 1 {
		t.Errorf("catch-ups of the slow handler = %v, want at least 1", n)
	}
	slow.check(t)
	fast.check(t)
}

func testLateHandler(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	for i := range 10 {
		put(t, s, fmt.Sprintf("%s/k%d", p, i), fmt.Sprint(i))
	}
	inf := start(t, s, informer.Config[string]{Prefix: p})
	inf.sync(t)
	rec := newRecorder()
	reg, err := inf.AddEventHandler(rec.handler("late"))
	if err != nil {
		t.Fatalf("AddEventHandler: %v", err)
	}
	want := listed(t, s, p)
	wantView(t, "late handler", rec.snapshot, want)
	poll.UntilFunc(t, 10*time.Second, func() string { return "late handler HasSynced still false" }, reg.HasSynced)
	rec.mu.Lock()
	initial := rec.initial
	rec.mu.Unlock()
	if initial != len(want) {
		t.Errorf("late handler got %d adds with isInitialList, want %d", initial, len(want))
	}
	put(t, s, p+"/new", "n")
	want[p+"/new"] = "n"
	wantView(t, "late handler after a put", rec.snapshot, want)
	rec.check(t)
}

func testRemove(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	removed, kept := newRecorder(), newRecorder()
	inf := start(t, s, informer.Config[string]{Prefix: p})
	reg, err := inf.AddEventHandler(removed.handler("removed"))
	if err != nil {
		t.Fatalf("AddEventHandler: %v", err)
	}
	if _, err := inf.AddEventHandler(kept.handler("kept")); err != nil {
		t.Fatalf("AddEventHandler: %v", err)
	}
	inf.sync(t)
	put(t, s, p+"/before", "1")
	wantView(t, "removed handler before Remove", removed.snapshot, map[string]string{p + "/before": "1"})
	reg.Remove()
	reg.Remove() // idempotent
	put(t, s, p+"/after", "2")
	wantView(t, "kept handler", kept.snapshot, map[string]string{p + "/before": "1", p + "/after": "2"})
	if got := removed.snapshot(); len(got) != 1 {
		t.Errorf("removed handler saw %v after Remove, want only the key before", got)
	}
}

func testResync(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	for i := range 5 {
		put(t, s, fmt.Sprintf("%s/k%d", p, i), fmt.Sprint(i))
	}
	rec := newRecorder()
	inf := start(t, s, informer.Config[string]{Prefix: p, ResyncPeriod: 50 * time.Millisecond}, rec.handler("rec"))
	inf.sync(t)
	for i := range 5 {
		k := fmt.Sprintf("%s/k%d", p, i)
		poll.UntilFunc(t, 10*time.Second, func() string { return fmt.Sprintf("no resync of %s: %v", k, rec.hist(k)) }, func() bool {
			return slices.Contains(rec.hist(k), "="+fmt.Sprint(i))
		})
	}
	rec.check(t)
}

func testResumeAfterCut(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	for _, k := range []string{"changed", "deleted", "same"} {
		put(t, s, p+"/"+k, "v1")
	}
	g := newGated(s)
	defer func() { _ = g.Close() }()
	rec := newRecorder()
	m := informer.NewMetrics()
	inf := start(t, g, informer.Config[string]{Prefix: p, Metrics: m, Name: p}, rec.handler("rec"))
	inf.sync(t)
	wantView(t, "handler before the cut", rec.snapshot, listed(t, s, p))
	g.cut()
	put(t, s, p+"/changed", "v2")
	del(t, s, p+"/deleted")
	put(t, s, p+"/new", "v1")
	g.heal()
	want := listed(t, s, p)
	wantView(t, "cache after the cut", inf.snapshot, want)
	wantView(t, "handler after the cut", rec.snapshot, want)
	if h.NoHistory {
		rec.check(t)
		return
	}
	// With history the stream resumes where it stopped: every change
	// arrives as such, with no re-list and no tombstone.
	if got, w := rec.hist(p+"/deleted"), []string{"+v1", "-v1"}; !slices.Equal(got, w) {
		t.Errorf("history of deleted: %v, want %v (a final delete)", got, w)
	}
	if n := testutil.ToFloat64(m.Relists(p)); n != 0 {
		t.Errorf("re-lists = %v after a short cut, want 0 (resume from the last revision)", n)
	}
	rec.check(t)
}

func testCompactionRelist(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	for _, k := range []string{"gone1", "gone2", "changed", "same"} {
		put(t, s, p+"/"+k, "v1")
	}
	g := newGated(s)
	defer func() { _ = g.Close() }()
	rec := newRecorder()
	m := informer.NewMetrics()
	inf := start(t, g, informer.Config[string]{Prefix: p, Metrics: m, Name: p}, rec.handler("rec"))
	inf.sync(t)
	wantView(t, "handler before the cut", rec.snapshot, listed(t, s, p))
	g.cut()
	del(t, s, p+"/gone1")
	del(t, s, p+"/gone2")
	put(t, s, p+"/changed", "v2")
	put(t, s, p+"/new", "v1")
	h.Compact(t, s, revision(t, s))
	g.heal()
	want := listed(t, s, p)
	wantView(t, "cache after the re-list", inf.snapshot, want)
	wantView(t, "handler after the re-list", rec.snapshot, want)
	for _, k := range []string{"gone1", "gone2"} {
		if got, w := rec.hist(p+"/"+k), []string{"+v1", "-?v1"}; !slices.Equal(got, w) {
			t.Errorf("history of %s: %v, want %v (a tombstone)", k, got, w)
		}
	}
	if got, w := rec.hist(p+"/changed"), []string{"+v1", "~v2"}; !slices.Equal(got, w) {
		t.Errorf("history of changed: %v, want %v", got, w)
	}
	if got, w := rec.hist(p+"/same"), []string{"+v1"}; !slices.Equal(got, w) {
		t.Errorf("history of same: %v, want %v (no event for an unchanged key)", got, w)
	}
	if n := testutil.ToFloat64(m.Relists(p)); n < 1 {
		t.Errorf("re-lists = %v, want at least 1", n)
	}
	rec.check(t)
}

func testRandomWriters(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	rec := newRecorder()
	inf := start(t, s, informer.Config[string]{Prefix: p, HandlerQueueSize: 16}, rec.handler("rec"))
	inf.sync(t)
	const writers, keys = 4, 25
	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for w := range writers {
		ws := h.New(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { _ = ws.Close() }()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; time.Now().Before(deadline) && i < 400; i++ {
				k := fmt.Sprintf("%s/k%02d", p, r.IntN(keys))
				ctx := testCtx(t, 10*time.Second)
				var err error
				if r.IntN(4) == 0 {
					err = ws.Delete(ctx, k)
					if kvErrNotFound(err) {
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
	inf.catchUp(t, s)
	want := listed(t, s, p)
	if got := inf.snapshot(); !equalMaps(got, want) {
		t.Fatalf("cache at the store's revision differs from List: %s", diff(got, want))
	}
	wantView(t, "handler", rec.snapshot, want)
	rec.check(t)
}

func testReadYourWrites(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	inf := start(t, s, informer.Config[string]{Prefix: p})
	inf.sync(t)
	for i := range 20 {
		k := fmt.Sprintf("%s/k%d", p, i%3)
		put(t, s, k, fmt.Sprint(i))
		// Both ways the doc offers: the store's revision read after the
		// write (a few times: on stores whose idle streams report progress
		// once a second it costs up to that), or the written pair's.
		if i < 3 {
			inf.catchUp(t, s)
		} else {
			pair, err := s.Get(testCtx(t, 10*time.Second), k, nil)
			if err != nil {
				t.Fatalf("Get(%s): %v", k, err)
			}
			if err := inf.WaitForRevision(testCtx(t, 30*time.Second), pair.Revision); err != nil {
				t.Fatalf("WaitForRevision(%d): %v", pair.Revision, err)
			}
		}
		if v, ok := inf.Get(k); !ok || v != fmt.Sprint(i) {
			t.Fatalf("Get(%s) right after WaitForRevision = %q, %v; want %d", k, v, ok, i)
		}
	}
}

func testServerRestart(t *testing.T, h Harness) {
	s := open(t, h)
	p := casePrefix(t)
	for i := range 5 {
		put(t, s, fmt.Sprintf("%s/k%d", p, i), "before")
	}
	rec := newRecorder()
	inf := start(t, s, informer.Config[string]{Prefix: p}, rec.handler("rec"))
	inf.sync(t)
	wantView(t, "handler before the restart", rec.snapshot, listed(t, s, p))
	h.Restart(t)
	// Writes right after the restart, while the stream reconnects; the
	// store may need a moment to reach the server again.
	for i := 3; i < 8; i++ {
		k := fmt.Sprintf("%s/k%d", p, i)
		poll.UntilFunc(t, 30*time.Second, func() string { return "Put after restart keeps failing" }, func() bool {
			return s.Put(testCtx(t, 5*time.Second), k, []byte("after"), nil) == nil
		})
	}
	want := listed(t, s, p)
	wantView(t, "cache after the restart", inf.snapshot, want)
	wantView(t, "handler after the restart", rec.snapshot, want)
	if h.RestartLosesData {
		for i := range 3 {
			k := fmt.Sprintf("%s/k%d", p, i)
			if got := rec.hist(k); len(got) != 2 || got[1] != "-?before" {
				t.Errorf("history of %s: %v, want an add then a tombstone", k, got)
			}
		}
	}
	rec.check(t)
}

func kvErrNotFound(err error) bool { return err != nil && errorsIs(err, kv.ErrKeyNotFound) }
