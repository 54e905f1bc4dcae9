package informertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv"
)

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// casePrefix gives each case a prefix of its own, fresh on every run of the
// test binary against a long-lived server.
func casePrefix(t testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("informertest/%s-%08x", name, rand.Uint32())
}

func open(t testing.TB, h Harness) kv.Store {
	t.Helper()
	s := h.New(t)
	t.Cleanup(func() { _ = s.Close() })
	if _, ok := s.(kv.Streamer); !ok {
		t.Fatalf("%s: New's store %T does not implement kv.Streamer", h.Name, s)
	}
	return s
}

func decodeString(_ string, v []byte) (string, error) { return string(v), nil }

// running is an informer of strings being Run by the test.
type running struct {
	*informer.Informer[string]
	regs   []informer.Registration // of the handlers given to start, in order
	cancel context.CancelFunc
	done   chan error
}

// start runs an informer on store until the test ends (or stop).
func start(t testing.TB, store kv.Store, cfg informer.Config[string], handlers ...informer.Handler[string]) *running {
	t.Helper()
	if cfg.Decode == nil {
		cfg.Decode = decodeString
	}
	if cfg.Backoff.Initial == 0 {
		cfg.Backoff = informer.Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	inf, err := informer.New(store, cfg)
	if err != nil {
		t.Fatalf("informer.New: %v", err)
	}
	var regs []informer.Registration
	for _, h := range handlers {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			t.Fatalf("AddEventHandler: %v", err)
		}
		regs = append(regs, reg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Informer: inf, regs: regs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- inf.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t testing.TB) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
		r.done <- err // let a second stop return too
	case <-time.After(30 * time.Second):
		t.Errorf("Run did not return 30s after its ctx ended")
	}
}

func (r *running) sync(t testing.TB) {
	t.Helper()
	if err := r.WaitForCacheSync(testCtx(t, 30*time.Second)); err != nil {
		t.Fatalf("WaitForCacheSync: %v", err)
	}
}

// snapshot returns the informer's cache as key -> value.
func (r *running) snapshot() map[string]string {
	out := make(map[string]string)
	for _, k := range r.Keys() {
		if v, ok := r.Get(k); ok {
			out[k] = v
		}
	}
	return out
}

// recorder is a handler that keeps its own view of the keys and every
// state it was shown per key.
type recorder struct {
	mu      sync.Mutex
	view    map[string]string
	history map[string][]string // per key: "+v", "~v", "-v", "-?v" (tombstone), "=v" (resync)
	initial int
	errs    []string
	gate    chan struct{} // when set, every call waits for it to be closed
}

func newRecorder() *recorder {
	return &recorder{view: make(map[string]string), history: make(map[string][]string)}
}

func (rec *recorder) wait() {
	rec.mu.Lock()
	g := rec.gate
	rec.mu.Unlock()
	if g != nil {
		<-g
	}
}

func (rec *recorder) handler(name string) informer.Handler[string] {
	return informer.Handler[string]{
		Name: name,
		OnAdd: func(key, obj string, initial bool) {
			rec.wait()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if _, ok := rec.view[key]; ok {
				rec.errs = append(rec.errs, fmt.Sprintf("OnAdd(%s=%s) for a key already seen as %s", key, obj, rec.view[key]))
			}
			if initial {
				rec.initial++
			}
			rec.view[key] = obj
			rec.history[key] = append(rec.history[key], "+"+obj)
		},
		OnUpdate: func(key, old, obj string) {
			rec.wait()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if v, ok := rec.view[key]; !ok || v != old {
				rec.errs = append(rec.errs, fmt.Sprintf("OnUpdate(%s: %s -> %s) but the handler last saw %q (present %v)", key, old, obj, v, ok))
			}
			rec.view[key] = obj
			if old == obj {
				rec.history[key] = append(rec.history[key], "="+obj)
			} else {
				rec.history[key] = append(rec.history[key], "~"+obj)
			}
		},
		OnDelete: func(key, last string, final bool) {
			rec.wait()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if v, ok := rec.view[key]; !ok || v != last {
				rec.errs = append(rec.errs, fmt.Sprintf("OnDelete(%s, last %s) but the handler last saw %q (present %v)", key, last, v, ok))
			}
			delete(rec.view, key)
			if final {
				rec.history[key] = append(rec.history[key], "-"+last)
			} else {
				rec.history[key] = append(rec.history[key], "-?"+last)
			}
		},
	}
}

func (rec *recorder) snapshot() map[string]string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return maps.Clone(rec.view)
}

func (rec *recorder) hist(key string) []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.history[key])
}

func (rec *recorder) check(t testing.TB) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.errs {
		t.Error(e)
	}
}

// listed returns the store's keys below prefix as key -> value.
func listed(t testing.TB, s kv.Store, prefix string) map[string]string {
	t.Helper()
	pairs, err := s.List(testCtx(t, 10*time.Second), prefix, &kv.ReadOptions{Consistent: true})
	if err != nil {
		t.Fatalf("List(%s): %v", prefix, err)
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		out[p.Key] = string(p.Value)
	}
	return out
}

func put(t testing.TB, s kv.Store, key, value string) {
	t.Helper()
	if err := s.Put(testCtx(t, 10*time.Second), key, []byte(value), nil); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func del(t testing.TB, s kv.Store, key string) {
	t.Helper()
	if err := s.Delete(testCtx(t, 10*time.Second), key); err != nil {
		t.Fatalf("Delete(%s): %v", key, err)
	}
}

func revision(t testing.TB, s kv.Store) uint64 {
	t.Helper()
	rev, err := s.(kv.Streamer).Revision(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

// catchUp waits until the informer has applied every write made so far.
func (r *running) catchUp(t testing.TB, s kv.Store) {
	t.Helper()
	rev := revision(t, s)
	if err := r.WaitForRevision(testCtx(t, 30*time.Second), rev); err != nil {
		t.Fatalf("WaitForRevision(%d): %v", rev, err)
	}
}

func equalMaps(a, b map[string]string) bool { return maps.Equal(a, b) }

func diff(got, want map[string]string) string {
	var out []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("missing %s=%s", k, v))
		} else if g != v {
			out = append(out, fmt.Sprintf("%s=%s, want %s", k, g, v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("extra %s=%s", k, v))
		}
	}
	slices.Sort(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("... %d more", len(out)-10))
	}
	return fmt.Sprint(out)
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
