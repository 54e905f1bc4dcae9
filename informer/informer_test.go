package informer_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
	"github.com/regentkv/regent/workqueue"
)

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newMemory(t testing.TB) *memory.Store {
	b := memory.NewBackend()
	t.Cleanup(b.Close)
	s := b.Client()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func put(t testing.TB, s kv.Store, k, v string) {
	t.Helper()
	if err := s.Put(ctxFor(t, 5*time.Second), k, []byte(v), nil); err != nil {
		t.Fatalf("Put(%s): %v", k, err)
	}
}

// run runs inf until the test ends and checks that Run then returns
// context.Canceled.
func run[T any](t testing.TB, inf *informer.Informer[T]) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inf.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}

func atoi(_ string, v []byte) (int, error) { return strconv.Atoi(string(v)) }

func TestConfigValidation(t *testing.T) {
	s := newMemory(t)
	dec := func(string, []byte) (int, error) { return 0, nil }
	for _, tc := range []struct {
		name string
		cfg  informer.Config[int]
		want string
	}{
		{"no decode", informer.Config[int]{Prefix: "a"}, "Decode is required"},
		{"bad prefix", informer.Config[int]{Prefix: "a//b", Decode: dec}, "Prefix"},
		{"negative resync", informer.Config[int]{Decode: dec, ResyncPeriod: -time.Second}, "ResyncPeriod -1s is negative"},
		{"negative queue", informer.Config[int]{Decode: dec, HandlerQueueSize: -1}, "HandlerQueueSize -1"},
		{"nil index func", informer.Config[int]{Decode: dec, Indexers: map[string]informer.IndexFunc[int]{"x": nil}}, `index "x"`},
		{"backoff disordered", informer.Config[int]{Decode: dec, Backoff: informer.Backoff{Initial: time.Second, Max: time.Millisecond}}, "Backoff.Max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := informer.New(s, tc.cfg)
			if !errors.Is(err, informer.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := informer.New[int](nil, informer.Config[int]{Decode: dec}); !errors.Is(err, informer.ErrInvalidConfig) {
		t.Errorf("New(nil store) = %v, want ErrInvalidConfig", err)
	}
}

// failing is a store whose lists always fail, as when the server is down.
type failing struct {
	kv.Store
	kv.Streamer
}

func (failing) Snapshot(context.Context, string) (kv.Snapshot, error) {
	return kv.Snapshot{}, fmt.Errorf("dial 10.0.0.1:2379: %w", kv.ErrNotReachable)
}

func TestWaitForCacheSyncSaysWhy(t *testing.T) {
	s := newMemory(t)
	inf, err := informer.New(failing{s, s}, informer.Config[int]{Decode: atoi,
		Backoff: informer.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	err = inf.WaitForCacheSync(ctxFor(t, 10*time.Millisecond))
	if !errors.Is(err, informer.ErrNotSynced) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "Run has not been called") {
		t.Errorf("before Run: %v, want ErrNotSynced + DeadlineExceeded saying Run has not been called", err)
	}
	run(t, inf)
	ctx := ctxFor(t, 200*time.Millisecond)
	err = inf.WaitForCacheSync(ctx)
	if !errors.Is(err, informer.ErrNotSynced) || !errors.Is(err, kv.ErrNotReachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForCacheSync = %v, want ErrNotSynced wrapping kv.ErrNotReachable and DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "no successful list yet") || !strings.Contains(err.Error(), "10.0.0.1:2379") {
		t.Errorf("WaitForCacheSync error %q does not say why", err)
	}
	if inf.HasSynced() {
		t.Errorf("HasSynced true without a list")
	}
}

// WaitForCacheSync without a deadline must not outlive Run: once Run has
// returned (here at once: the store is closed), it returns with Run's
// error, not after its own ctx ends (first hour: it stayed blocked 15 s and
// more, then said only "Run has returned").
func TestWaitForCacheSyncReturnsWhenRunReturns(t *testing.T) {
	s := newMemory(t)
	_ = s.Close()
	inf, err := informer.New(s, informer.Config[int]{Decode: atoi})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- inf.Run(context.Background()) }()
	waited := make(chan error, 1)
	go func() { waited <- inf.WaitForCacheSync(context.Background()) }()
	select {
	case err := <-waited:
		if !errors.Is(err, informer.ErrNotSynced) || !errors.Is(err, kv.ErrClosed) || !strings.Contains(err.Error(), "Run has returned") {
			t.Fatalf("WaitForCacheSync after Run returned: %v, want ErrNotSynced wrapping Run's kv.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitForCacheSync(context.Background()) still waiting 5s after Run returned on a closed store")
	}
	if err := <-runErr; !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("Run on a closed store: %v, want kv.ErrClosed", err)
	}
}

func TestDecodeErrorsMakeKeysAbsent(t *testing.T) {
	s := newMemory(t)
	put(t, s, "d/good", "1")
	put(t, s, "d/bad", "x")
	put(t, s, "d/turns-bad", "2")
	m := informer.NewMetrics()
	var reported sync.Map
	inf, err := informer.New(s, informer.Config[int]{Prefix: "d", Decode: atoi, Metrics: m, Name: "d",
		OnError: func(key string, err error) {
			if !errors.Is(err, informer.ErrDecode) {
				t.Errorf("OnError(%s, %v): want ErrDecode", key, err)
			}
			reported.Store(key, true)
		}})
	if err != nil {
		t.Fatal(err)
	}
	var tombstones atomic.Int32
	reg, err := inf.AddEventHandler(informer.Handler[int]{
		OnDelete: func(key string, last int, final bool) {
			if key == "d/turns-bad" && last == 2 && !final {
				tombstones.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, inf)
	if err := inf.WaitForCacheSync(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The handler's initial list is the cache as it is when the handler
	// gets it: only once it has had d/turns-bad=2 is a tombstone owed.
	select {
	case <-reg.Synced():
	case <-ctxFor(t, 5*time.Second).Done():
		t.Fatal("handler not synced after 5s")
	}
	if _, ok := inf.Get("d/bad"); ok {
		t.Errorf("undecodable d/bad is cached")
	}
	put(t, s, "d/turns-bad", "nope")
	put(t, s, "d/later", "3")
	rev, _ := s.Revision(ctxFor(t, time.Second))
	if err := inf.WaitForRevision(ctxFor(t, 5*time.Second), rev); err != nil {
		t.Fatal(err)
	}
	if got := inf.Keys(); strings.Join(got, ",") != "d/good,d/later" {
		t.Errorf("cached keys %v, want d/good and d/later", got)
	}
	poll.Until(t, 5*time.Second, "no tombstone for d/turns-bad", func() bool { return tombstones.Load() == 1 })
	for _, k := range []string{"d/bad", "d/turns-bad"} {
		if _, ok := reported.Load(k); !ok {
			t.Errorf("no OnError for %s", k)
		}
	}
	if n := testutil.ToFloat64(m.DecodeErrors("d")); n != 2 {
		t.Errorf("decode errors = %v, want 2", n)
	}
}

func TestIndexers(t *testing.T) {
	s := newMemory(t)
	parity := func(_ string, v int) ([]string, error) {
		if v < 0 {
			return nil, errors.New("negative")
		}
		return []string{[]string{"even", "odd"}[v%2]}, nil
	}
	inf, err := informer.New(s, informer.Config[int]{Prefix: "n", Decode: atoi,
		Indexers: map[string]informer.IndexFunc[int]{"parity": parity}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		put(t, s, fmt.Sprintf("n/%d", i), strconv.Itoa(i))
	}
	run(t, inf)
	if err := inf.WaitForCacheSync(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	check := func(value, want string) {
		t.Helper()
		keys, err := inf.Lister().IndexKeys("parity", value)
		if err != nil || strings.Join(keys, ",") != want {
			t.Errorf("IndexKeys(parity, %s) = %v, %v; want %s", value, keys, err, want)
		}
	}
	check("even", "n/0,n/2,n/4")
	check("odd", "n/1,n/3")
	put(t, s, "n/2", "7")
	put(t, s, "n/3", "-1") // index error: cached, not indexed
	rev, _ := s.Revision(ctxFor(t, time.Second))
	if err := inf.WaitForRevision(ctxFor(t, 5*time.Second), rev); err != nil {
		t.Fatal(err)
	}
	check("even", "n/0,n/4")
	check("odd", "n/1,n/2")
	if v, ok := inf.Get("n/3"); !ok || v != -1 {
		t.Errorf("Get(n/3) = %v, %v; want -1 (cached despite the index error)", v, ok)
	}
	objs, err := inf.ByIndex("parity", "odd")
	if err != nil || fmt.Sprint(objs) != "[1 7]" {
		t.Errorf("ByIndex(parity, odd) = %v, %v; want [1 7]", objs, err)
	}
	if _, err := inf.ByIndex("nope", "x"); !errors.Is(err, informer.ErrUnknownIndex) {
		t.Errorf("ByIndex(nope) = %v, want ErrUnknownIndex", err)
	}
}

func TestHandlerPanicIsRecovered(t *testing.T) {
	s := newMemory(t)
	m := informer.NewMetrics()
	inf, err := informer.New(s, informer.Config[int]{Prefix: "p", Decode: atoi, Metrics: m, Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int32
	if _, err := inf.AddEventHandler(informer.Handler[int]{Name: "boom", OnAdd: func(key string, v int, _ bool) {
		seen.Add(1)
		if v == 1 {
			panic("boom")
		}
	}}); err != nil {
		t.Fatal(err)
	}
	run(t, inf)
	put(t, s, "p/a", "1")
	put(t, s, "p/b", "2")
	poll.Until(t, 5*time.Second, "the handler did not go on after its panic", func() bool { return seen.Load() == 2 })
	if n := testutil.ToFloat64(m.Panics("p", "boom")); n != 1 {
		t.Errorf("panics = %v, want 1", n)
	}
}

// treeOnly hides the store's kv.Streamer, leaving WatchTree.
type treeOnly struct{ kv.Store }

func TestWatchTreeFallback(t *testing.T) {
	s := newMemory(t)
	put(t, s, "w/a", "1")
	put(t, s, "w/b", "2")
	inf, err := informer.New(treeOnly{s}, informer.Config[int]{Prefix: "w", Decode: atoi})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log []string
	reg, err := inf.AddEventHandler(informer.Handler[int]{
		OnAdd:    func(k string, v int, _ bool) { mu.Lock(); log = append(log, fmt.Sprint("+", k, v)); mu.Unlock() },
		OnUpdate: func(k string, o, v int) { mu.Lock(); log = append(log, fmt.Sprint("~", k, v)); mu.Unlock() },
		OnDelete: func(k string, v int, f bool) {
			mu.Lock()
			log = append(log, fmt.Sprintf("-%s%d:%v", k, v, f))
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, inf)
	// Once the handler has had the first list, it gets every change.
	poll.Until(t, 5*time.Second, "handler never synced", reg.HasSynced)
	put(t, s, "w/a", "3")
	if err := s.Delete(ctxFor(t, time.Second), "w/b"); err != nil {
		t.Fatal(err)
	}
	want := "[+w/a1 +w/b2 ~w/a3 -w/b2:true]"
	poll.Until(t, 5*time.Second, "handler log never became "+want, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprint(log) == want
	})
}

func TestRunLifecycle(t *testing.T) {
	b := memory.NewBackend()
	defer b.Close()
	s := b.Client()
	inf, err := informer.New(s, informer.Config[int]{Prefix: "l", Decode: atoi})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- inf.Run(context.Background()) }()
	if err := inf.WaitForCacheSync(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := inf.Run(context.Background()); !errors.Is(err, informer.ErrAlreadyRunning) {
		t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
	}
	_ = s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, kv.ErrClosed) {
			t.Errorf("Run after the store closed = %v, want kv.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the store closed")
	}
	if _, err := inf.AddEventHandler(informer.Handler[int]{}); !errors.Is(err, informer.ErrStopped) {
		t.Errorf("AddEventHandler after Run = %v, want ErrStopped", err)
	}
}

func TestEnqueueKeys(t *testing.T) {
	s := newMemory(t)
	q := workqueue.New(workqueue.Config[string]{})
	defer q.ShutDown()
	inf, err := informer.New(s, informer.Config[int]{Prefix: "q", Decode: atoi})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := informer.EnqueueKeys(inf, q); err != nil {
		t.Fatal(err)
	}
	put(t, s, "q/a", "1")
	run(t, inf)
	put(t, s, "q/b", "2")
	got := map[string]bool{}
	for len(got) < 2 {
		k, err := q.GetCtx(ctxFor(t, 5*time.Second))
		if err != nil {
			t.Fatalf("GetCtx: %v (got %v)", err, got)
		}
		got[k] = true
		q.Done(k)
	}
	if !got["q/a"] || !got["q/b"] {
		t.Errorf("queued %v, want q/a and q/b", got)
	}
}

func TestTransform(t *testing.T) {
	s := newMemory(t)
	put(t, s, "t/a", "2")
	put(t, s, "t/b", "13")
	var reported atomic.Int32
	inf, err := informer.New(s, informer.Config[int]{Prefix: "t", Decode: atoi,
		Transform: func(_ string, v int) (int, error) {
			if v > 9 {
				return 0, errors.New("too big")
			}
			return v * 10, nil
		},
		OnError: func(_ string, err error) {
			if errors.Is(err, informer.ErrDecode) && strings.Contains(err.Error(), "too big") {
				reported.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, inf)
	if err := inf.WaitForCacheSync(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if v, ok := inf.Get("t/a"); !ok || v != 20 {
		t.Errorf("Get(t/a) = %v, %v; want the transformed 20", v, ok)
	}
	if _, ok := inf.Get("t/b"); ok || reported.Load() != 1 {
		t.Errorf("t/b cached %v, %d reports; want absent and one ErrDecode report", ok, reported.Load())
	}
}

func TestRemoveFromInsideTheHandler(t *testing.T) {
	s := newMemory(t)
	inf, err := informer.New(s, informer.Config[int]{Prefix: "x", Decode: atoi})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	var reg informer.Registration
	ready := make(chan struct{})
	reg, err = inf.AddEventHandler(informer.Handler[int]{OnAdd: func(string, int, bool) {
		<-ready
		calls.Add(1)
		reg.Remove()
	}})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	var kept atomic.Int32
	if _, err := inf.AddEventHandler(informer.Handler[int]{OnAdd: func(string, int, bool) { kept.Add(1) }}); err != nil {
		t.Fatal(err)
	}
	run(t, inf)
	put(t, s, "x/a", "1")
	poll.Until(t, 5*time.Second, "first add not delivered", func() bool { return calls.Load() == 1 })
	put(t, s, "x/b", "2")
	poll.Until(t, 5*time.Second, "the other handler missed x/b", func() bool { return kept.Load() == 2 })
	if n := calls.Load(); n != 1 {
		t.Errorf("removed handler called %d times, want 1", n)
	}
}

// Get takes a key the way the store does ("/a/b/" is "a/b"), and Lookup
// tells "not synced yet" from "absent" (first hour: Get("/config/app/")
// missed, and Get before the sync said absent with no way to tell).
func TestGetNormalisesAndLookupTellsNotSynced(t *testing.T) {
	s := newMemory(t)
	put(t, s, "config/app", "7")
	inf, err := informer.New(s, informer.Config[int]{Prefix: "config", Decode: atoi})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := inf.Lookup("config/app"); ok || !errors.Is(err, informer.ErrNotSynced) {
		t.Fatalf("Lookup before Run: ok %v, err %v; want ErrNotSynced", ok, err)
	}
	run(t, inf)
	if err := inf.WaitForCacheSync(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"config/app", "/config/app", "config/app/", "/config/app/"} {
		if v, ok := inf.Get(k); !ok || v != 7 {
			t.Errorf("Get(%q) = %v, %v; want 7, true", k, v, ok)
		}
		if v, ok, err := inf.Lookup(k); err != nil || !ok || v != 7 {
			t.Errorf("Lookup(%q) = %v, %v, %v; want 7, true, nil", k, v, ok, err)
		}
	}
	if _, ok, err := inf.Lookup("config/other"); ok || err != nil {
		t.Errorf("Lookup of an absent key after the sync: ok %v, err %v; want false, nil", ok, err)
	}
	if _, ok := inf.Get("config//bad"); ok {
		t.Error("Get of an invalid key found something")
	}
}

// With KeepLastGood, a value that fails to decode keeps the last good
// object (no OnDelete, Get still answers) and Check says so until the key
// decodes again (first hour: a config reader lost its config to one bad
// push).
func TestKeepLastGoodOnDecodeError(t *testing.T) {
	s := newMemory(t)
	put(t, s, "cfg/app", "1")
	inf, err := informer.New(s, informer.Config[int]{Prefix: "cfg", Decode: atoi, KeepLastGood: true})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var deletes int
	if _, err := inf.AddEventHandler(informer.Handler[int]{
		OnDelete: func(string, int, bool) { mu.Lock(); deletes++; mu.Unlock() },
	}); err != nil {
		t.Fatal(err)
	}
	run(t, inf)
	if err := inf.WaitForCacheSync(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	put(t, s, "cfg/app", "not a number")
	poll.Until(t, 5*time.Second, "Check reporting the decode error", func() bool {
		return errors.Is(inf.Check(), informer.ErrDecode)
	})
	if v, ok := inf.Get("cfg/app"); !ok || v != 1 {
		t.Fatalf("Get after a bad value = %v, %v; want the last good 1", v, ok)
	}
	if !strings.Contains(inf.Check().Error(), "cfg/app") {
		t.Errorf("Check = %v; want it to name the key", inf.Check())
	}
	put(t, s, "cfg/app", "2")
	poll.Until(t, 5*time.Second, "the good value cached and Check clear", func() bool {
		v, ok := inf.Get("cfg/app")
		return ok && v == 2 && inf.Check() == nil
	})
	mu.Lock()
	defer mu.Unlock()
	if deletes != 0 {
		t.Errorf("%d OnDelete calls; a bad value must not look like a delete with KeepLastGood", deletes)
	}
}
