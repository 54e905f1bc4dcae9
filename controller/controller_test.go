package controller_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/regentkv/regent/clock/clocktest"
	"github.com/regentkv/regent/controller"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
	"github.com/regentkv/regent/workqueue"
)

const wait = 10 * time.Second

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

func del(t testing.TB, s kv.Store, k string) {
	t.Helper()
	if err := s.Delete(ctxFor(t, 5*time.Second), k); err != nil {
		t.Fatalf("Delete(%s): %v", k, err)
	}
}

func decodeString(_ string, v []byte) (string, error) { return string(v), nil }

// background runs f until the test ends; at cleanup it cancels f's ctx and
// checks that f returned want.
func background(t testing.TB, name string, f func(ctx context.Context) error, want error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, want) && err != want { //nolint:errorlint // nil want
			t.Errorf("%s returned %v, want %v", name, err, want)
		}
	})
}

func newInformer(t testing.TB, s kv.Store, prefix string) *informer.Informer[string] {
	t.Helper()
	inf, err := informer.New(s, informer.Config[string]{Prefix: prefix, Decode: decodeString})
	if err != nil {
		t.Fatal(err)
	}
	background(t, "informer.Run", inf.Run, context.Canceled)
	return inf
}

// recorder is a Reconciler that records every request and answers with
// what the test's function says.
type recorder struct {
	mu     sync.Mutex
	seen   []controller.Request[string]
	at     map[string][]time.Time // when each key was reconciled
	byKey  map[string]int
	answer func(req controller.Request[string], n int) (controller.Result, error)
}

func newRecorder(answer func(req controller.Request[string], n int) (controller.Result, error)) *recorder {
	if answer == nil {
		answer = func(controller.Request[string], int) (controller.Result, error) { return controller.Result{}, nil }
	}
	return &recorder{byKey: map[string]int{}, at: map[string][]time.Time{}, answer: answer}
}

func (r *recorder) Reconcile(_ context.Context, req controller.Request[string]) (controller.Result, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req)
	r.at[req.Key] = append(r.at[req.Key], time.Now())
	r.byKey[req.Key]++
	n := r.byKey[req.Key]
	r.mu.Unlock()
	return r.answer(req, n)
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byKey[key]
}

// times returns when key was reconciled, in order.
func (r *recorder) times(key string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.at[key]...)
}

func (r *recorder) last(key string) (controller.Request[string], bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.seen) - 1; i >= 0; i-- {
		if r.seen[i].Key == key {
			return r.seen[i], true
		}
	}
	return controller.Request[string]{}, false
}

func newController(t testing.TB, cfg controller.Config[string]) *controller.Controller[string] {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	c, err := controller.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigValidation(t *testing.T) {
	inf, err := informer.New(newMemory(t), informer.Config[string]{Decode: decodeString})
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(nil)
	for _, tc := range []struct {
		name string
		cfg  controller.Config[string]
		want string
	}{
		{"no name", controller.Config[string]{Informer: inf, Reconciler: r}, "Name is required"},
		{"no informer", controller.Config[string]{Name: "c", Reconciler: r}, "Informer is required"},
		{"no reconciler", controller.Config[string]{Name: "c", Informer: inf}, "Reconciler is required"},
		{"negative workers", controller.Config[string]{Name: "c", Informer: inf, Reconciler: r, Workers: -1}, "Workers -1"},
		{"negative timeout", controller.Config[string]{Name: "c", Informer: inf, Reconciler: r, ReconcileTimeout: -1}, "negative timeout"},
	} {
		_, err := controller.New(tc.cfg)
		if !errors.Is(err, controller.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig saying %q", tc.name, err, tc.want)
		}
	}
}

// TestReconcilesLatestState: every key is reconciled with its cached
// state; a delete is a request with Exists false.
func TestReconcilesLatestState(t *testing.T) {
	s := newMemory(t)
	put(t, s, "apps/a", "1")
	inf := newInformer(t, s, "apps")
	r := newRecorder(nil)
	c := newController(t, controller.Config[string]{Informer: inf, Reconciler: r, Workers: 3})
	background(t, "Controller.Run", c.Run, nil)

	poll.Until(t, wait, "apps/a not reconciled", func() bool { return r.count("apps/a") > 0 })
	put(t, s, "apps/b", "2")
	put(t, s, "apps/a", "3")
	poll.Until(t, wait, "apps/a=3 and apps/b=2 not reconciled", func() bool {
		a, _ := r.last("apps/a")
		b, _ := r.last("apps/b")
		return a.Object == "3" && a.Exists && b.Object == "2"
	})
	del(t, s, "apps/a")
	poll.Until(t, wait, "delete of apps/a not reconciled", func() bool {
		a, _ := r.last("apps/a")
		return !a.Exists && a.Object == ""
	})
}

// TestErrorsRetryWithBackoff: a failing reconcile is retried after the rate
// limiter's delay, and not before. It runs in a testing/synctest bubble:
// each delay is the fake time between two reconciles, exact.
func TestErrorsRetryWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newMemory(t)
		put(t, s, "apps/a", "1")
		inf := newInformer(t, s, "apps")
		limiter, err := workqueue.Exponential[string](time.Second, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		met := controller.NewMetrics()
		r := newRecorder(func(_ controller.Request[string], n int) (controller.Result, error) {
			if n <= 3 {
				return controller.Result{}, fmt.Errorf("attempt %d: dependency down", n)
			}
			return controller.Result{}, nil
		})
		c := newController(t, controller.Config[string]{Informer: inf, Reconciler: r, RateLimiter: limiter, Metrics: met})
		background(t, "Controller.Run", c.Run, nil)

		for attempt, delay := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			synctest.Wait()
			if n := r.count("apps/a"); n != attempt+1 {
				t.Fatalf("attempt %d did not fail and wait for a retry: %d attempts", attempt+1, n)
			}
			time.Sleep(delay - time.Millisecond)
			synctest.Wait()
			if n := r.count("apps/a"); n != attempt+1 {
				t.Fatalf("retried before the backoff: %d attempts", n)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			at := r.times("apps/a")
			if len(at) != attempt+2 {
				t.Fatalf("retry %d did not come at its backoff: %d attempts", attempt+1, len(at))
			}
			if got := at[attempt+1].Sub(at[attempt]); got != delay {
				t.Errorf("retry %d after %v, want %v", attempt+1, got, delay)
			}
		}
		synctest.Wait()
		if got := testutil.ToFloat64(met.Reconciles("test", "success")); got != 1 {
			t.Fatalf("success reconciles = %v: the fourth attempt did not succeed", got)
		}
		if got := testutil.ToFloat64(met.Reconciles("test", "error")); got != 3 {
			t.Errorf("error reconciles = %v, want 3", got)
		}
	})
}

// TestTerminalErrorsAreNotRetried: a Terminal error is counted and the key
// is left alone until it changes. It runs in a testing/synctest bubble: an
// hour of fake time, beyond the default rate limiter's longest delay
// (1000 s), passes without a retry.
func TestTerminalErrorsAreNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newMemory(t)
		put(t, s, "apps/bad", "x")
		inf := newInformer(t, s, "apps")
		met := controller.NewMetrics()
		r := newRecorder(func(req controller.Request[string], _ int) (controller.Result, error) {
			if req.Object == "x" {
				return controller.Result{}, controller.Terminal(errors.New("spec is invalid"))
			}
			return controller.Result{}, nil
		})
		c := newController(t, controller.Config[string]{Informer: inf, Reconciler: r, Metrics: met})
		background(t, "Controller.Run", c.Run, nil)

		synctest.Wait()
		if got := testutil.ToFloat64(met.Reconciles("test", "terminal_error")); got != 1 {
			t.Fatalf("terminal_error reconciles = %v, want 1", got)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := r.count("apps/bad"); n != 1 {
			t.Errorf("a retry came after a terminal error: %d reconciles in an hour, want 1", n)
		}
		put(t, s, "apps/bad", "fixed")
		synctest.Wait()
		if req, _ := r.last("apps/bad"); req.Object != "fixed" {
			t.Fatalf("the fixed key was not reconciled: last request %+v", req)
		}
		if n := r.count("apps/bad"); n != 2 {
			t.Errorf("apps/bad reconciled %d times, want 2 (terminal, then after the change)", n)
		}
		if !controller.IsTerminal(fmt.Errorf("wrapped: %w", controller.Terminal(errors.New("x")))) || controller.Terminal(nil) != nil {
			t.Errorf("IsTerminal/Terminal(nil) misbehave")
		}
	})
}

// TestPanicsAreRecovered: a panicking reconcile does not kill the worker;
// it is counted and retried with backoff. It runs in a testing/synctest
// bubble: the retry waits for fake time to pass.
func TestPanicsAreRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newMemory(t)
		put(t, s, "apps/a", "1")
		inf := newInformer(t, s, "apps")
		met := controller.NewMetrics()
		r := newRecorder(func(req controller.Request[string], n int) (controller.Result, error) {
			if n == 1 {
				panic(fmt.Sprintf("reconcile %s: boom", req.Key))
			}
			return controller.Result{}, nil
		})
		c := newController(t, controller.Config[string]{Informer: inf, Reconciler: r, Metrics: met})
		background(t, "Controller.Run", c.Run, nil)

		synctest.Wait()
		if got := testutil.ToFloat64(met.Panics("test")); got != 1 {
			t.Fatalf("panics = %v, want 1", got)
		}
		if n := r.count("apps/a"); n != 1 {
			t.Fatalf("%d reconciles with no time passed, want 1: the retry after the panic must wait a backoff", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := testutil.ToFloat64(met.Reconciles("test", "success")); got != 1 {
			t.Fatalf("success reconciles = %v: no successful retry after the panic", got)
		}
		if got := testutil.ToFloat64(met.Reconciles("test", "panic")); got != 1 {
			t.Errorf("panic reconciles = %v, want 1", got)
		}
	})
}

// TestConfigClockDrivesRequeueAfter is the package's one test of the public
// Config.Clock option with a clocktest fake, kept for users whose
// controllers talk to real servers, out of a testing/synctest bubble's
// reach: Result.RequeueAfter reconciles the key again after the delay on
// the given clock, with no change of the key. Every other test of fake time
// here runs in a bubble instead.
func TestConfigClockDrivesRequeueAfter(t *testing.T) {
	s := newMemory(t)
	put(t, s, "apps/a", "1")
	inf := newInformer(t, s, "apps")
	clock := clocktest.New(time.Unix(0, 0))
	r := newRecorder(func(controller.Request[string], int) (controller.Result, error) {
		return controller.Result{RequeueAfter: time.Minute}, nil
	})
	c := newController(t, controller.Config[string]{Informer: inf, Reconciler: r, Clock: clock})
	background(t, "Controller.Run", c.Run, nil)

	for n := 1; n <= 3; n++ {
		poll.Until(t, wait, fmt.Sprintf("reconcile %d did not schedule the next", n), func() bool {
			return r.count("apps/a") == n && clock.Armed() == 1
		})
		if due, _ := clock.NextDue(); due.Sub(clock.Now()) != time.Minute {
			t.Fatalf("requeued after %v, want 1m", due.Sub(clock.Now()))
		}
		clock.Step(time.Minute)
	}
}

// TestShutdownCancelsReconcilesInFlight: when Run's ctx ends, a reconcile in
// progress sees its ctx cancelled and Run returns once it has.
func TestShutdownCancelsReconcilesInFlight(t *testing.T) {
	s := newMemory(t)
	put(t, s, "apps/a", "1")
	inf := newInformer(t, s, "apps")
	met := controller.NewMetrics()
	started := make(chan struct{})
	sawCancel := make(chan error, 1)
	r := controller.ReconcileFunc[string](func(ctx context.Context, _ controller.Request[string]) (controller.Result, error) {
		close(started)
		<-ctx.Done()
		sawCancel <- ctx.Err()
		return controller.Result{}, ctx.Err()
	})
	c := newController(t, controller.Config[string]{Informer: inf, Reconciler: r, Metrics: met})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-started:
	case <-time.After(wait):
		t.Fatal("reconcile did not start")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after ctx ended", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return after ctx ended")
	}
	if err := <-sawCancel; !errors.Is(err, context.Canceled) {
		t.Errorf("reconcile ctx error = %v, want Canceled", err)
	}
	if got := testutil.ToFloat64(met.Reconciles("test", "canceled")); got != 1 {
		t.Errorf("canceled reconciles = %v, want 1 (not counted as an error)", got)
	}
}

// TestRunAgainStartsFromTheCache: a second Run (a new leadership term)
// reconciles every cached key again; two Runs at once are refused.
func TestRunAgainStartsFromTheCache(t *testing.T) {
	s := newMemory(t)
	put(t, s, "apps/a", "1")
	put(t, s, "apps/b", "1")
	inf := newInformer(t, s, "apps")
	r := newRecorder(nil)
	c := newController(t, controller.Config[string]{Informer: inf, Reconciler: r})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	poll.Until(t, wait, "first term did not reconcile both keys", func() bool {
		return r.count("apps/a") == 1 && r.count("apps/b") == 1
	})
	if err := c.Run(ctxFor(t, time.Second)); !errors.Is(err, controller.ErrAlreadyRunning) {
		t.Errorf("second concurrent Run = %v, want ErrAlreadyRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	background(t, "Controller.Run", c.Run, nil)
	poll.Until(t, wait, "second term did not reconcile both keys again", func() bool {
		return r.count("apps/a") == 2 && r.count("apps/b") == 2
	})
}

// TestCacheSyncTimeout: Run fails, saying why, when its informer cannot
// sync.
func TestCacheSyncTimeout(t *testing.T) {
	s := newMemory(t)
	inf, err := informer.New(s, informer.Config[string]{Prefix: "apps", Decode: decodeString})
	if err != nil {
		t.Fatal(err)
	}
	// The informer is never run: it cannot sync.
	c := newController(t, controller.Config[string]{Informer: inf, Reconciler: newRecorder(nil), CacheSyncTimeout: 50 * time.Millisecond})
	err = c.Run(ctxFor(t, wait))
	if !errors.Is(err, informer.ErrNotSynced) || !strings.Contains(err.Error(), "did not sync within 50ms") {
		t.Errorf("Run = %v, want ErrNotSynced saying the caches did not sync within 50ms", err)
	}
}

// A long cache-sync wait is not silent: Run logs while it waits, with the
// reason the caches have not synced (first hour: 2 minutes of silence).
func TestCacheSyncWaitLogsProgress(t *testing.T) {
	defer controller.SetSyncProgressEvery(20 * time.Millisecond)()
	s := newMemory(t)
	inf, err := informer.New(s, informer.Config[string]{Prefix: "apps", Decode: decodeString})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	// The informer is never run: it cannot sync.
	c := newController(t, controller.Config[string]{Informer: inf, Reconciler: newRecorder(nil),
		CacheSyncTimeout: 300 * time.Millisecond, Logger: zap.New(core)})
	if err := c.Run(ctxFor(t, wait)); !errors.Is(err, informer.ErrNotSynced) {
		t.Fatalf("Run = %v, want ErrNotSynced", err)
	}
	waiting := logs.FilterMessage("still waiting for caches to sync").All()
	if len(waiting) < 2 {
		t.Fatalf("%d progress lines in a 300ms wait logged every 20ms, want several: %v", len(waiting), logs.All())
	}
	if why := fmt.Sprint(waiting[0].ContextMap()["error"]); !strings.Contains(why, "Run has not been called") {
		t.Errorf("progress line says %q; want the reason (Run has not been called)", why)
	}
}

// TestWatchMapsSecondaryKeys: a change in a second informer reconciles the
// key its map function names.
func TestWatchMapsSecondaryKeys(t *testing.T) {
	s := newMemory(t)
	put(t, s, "apps/web", "v1")
	apps := newInformer(t, s, "apps")
	pods := newInformer(t, s, "pods")
	r := newRecorder(nil)
	c := newController(t, controller.Config[string]{Informer: apps, Reconciler: r})
	owner := func(_ string, pod string) []string { return []string{"apps/" + pod} } // a pod's value names its app
	if err := controller.Watch(c, pods, owner); err != nil {
		t.Fatal(err)
	}
	background(t, "Controller.Run", c.Run, nil)
	poll.Until(t, wait, "apps/web not reconciled", func() bool { return r.count("apps/web") == 1 })
	put(t, s, "pods/web-1", "web")
	poll.Until(t, wait, "a pod change did not reconcile its app", func() bool { return r.count("apps/web") == 2 })
	if err := controller.Watch(c, pods, owner); !errors.Is(err, controller.ErrAlreadyRunning) {
		t.Errorf("Watch while running = %v, want ErrAlreadyRunning", err)
	}
}

// TestReconcileCtxCarriesLogger: LoggerFrom(ctx) in a reconcile is the
// controller's logger with the controller's name and the key attached.
func TestReconcileCtxCarriesLogger(t *testing.T) {
	s := newMemory(t)
	put(t, s, "apps/a", "1")
	inf := newInformer(t, s, "apps")
	core, logs := observer.New(zap.InfoLevel)
	r := controller.ReconcileFunc[string](func(ctx context.Context, _ controller.Request[string]) (controller.Result, error) {
		controller.LoggerFrom(ctx).Info("reconciling")
		return controller.Result{}, nil
	})
	c := newController(t, controller.Config[string]{Name: "apps", Informer: inf, Reconciler: r, Logger: zap.New(core)})
	background(t, "Controller.Run", c.Run, nil)
	poll.Until(t, wait, "no log line from the reconcile", func() bool { return logs.FilterMessage("reconciling").Len() == 1 })
	fields := logs.FilterMessage("reconciling").All()[0].ContextMap()
	if fields["controller"] != "apps" || fields["key"] != "apps/a" {
		t.Errorf("reconcile log fields = %v, want controller=apps key=apps/a", fields)
	}
	if controller.LoggerFrom(context.Background()) == nil {
		t.Error("LoggerFrom outside a reconcile returned nil")
	}
}

// An informer whose Run has returned never syncs: Run says so at once
// instead of waiting (and logging) in a loop until CacheSyncTimeout.
func TestCacheSyncGivesUpWhenTheInformerStopped(t *testing.T) {
	defer controller.SetSyncProgressEvery(20 * time.Millisecond)()
	s := newMemory(t)
	_ = s.Close()
	inf, err := informer.New(s, informer.Config[string]{Prefix: "apps", Decode: decodeString})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	c := newController(t, controller.Config[string]{Informer: inf, Reconciler: newRecorder(nil),
		CacheSyncTimeout: 10 * time.Second, Logger: zap.New(core)})
	res := make(chan error, 1)
	go func() { res <- c.Run(ctxFor(t, wait)) }()
	poll.Until(t, wait, "the controller waiting for its cache", func() bool {
		return logs.FilterMessage("still waiting for caches to sync").Len() > 0
	})
	// Run on the closed store returns at once: the cache will never sync.
	if err := inf.Run(context.Background()); !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("informer Run on a closed store: %v", err)
	}
	stopped := time.Now()
	select {
	case err := <-res:
		if !errors.Is(err, kv.ErrClosed) {
			t.Fatalf("Run = %v, want the informer's kv.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("controller Run still waiting 5s after its informer stopped")
	}
	if n := logs.FilterMessage("still waiting for caches to sync").Len(); n > int(time.Since(stopped)/(20*time.Millisecond))+3 {
		t.Errorf("%d progress lines: the wait spun after the informer stopped", n)
	}
}
