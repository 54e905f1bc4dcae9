package kvtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/regentkv/regent/kv"
)

// Link is the connection between one client and its server, as a test
// proxy sees it (internal/testenv.Proxy is one).
type Link interface {
	// Mute drops everything the server sends from now on, while the
	// client's requests still reach it.
	Mute()
	// Cut drops every connection and refuses new ones.
	Cut()
	// Heal lets connections through again after Cut.
	Heal()
}

// OutcomeHarness opens clients whose link to the server a test controls.
type OutcomeHarness struct {
	// Open returns a new client of the backend that talks to it through
	// the returned Link only. The suite closes the client.
	Open func(t testing.TB) (kv.Store, Link)
	// Reader is a client with a direct link, to see what the server
	// applied.
	Reader kv.Store
	// RequestTimeout is the driver's RequestTimeout setting of the
	// clients Open returns: a call whose ctx has no deadline must end by
	// then (plus slack) when the server cannot be reached. Required.
	RequestTimeout time.Duration
}

// RunOutcomes checks that every write reports what the server did: a write
// whose replies are lost fails with kv.ErrOutcomeUnknown (its first
// request reached the server; whether the write got as far as a change
// depends on how many requests the driver needs), and one that could not
// be sent fails with kv.ErrNotReachable but not kv.ErrOutcomeUnknown, and
// is not applied. Each write kind runs on a client of its own.
func RunOutcomes(t *testing.T, h OutcomeHarness) {
	t.Helper()
	writes := []struct {
		name  string
		setup func(e *env, s kv.Store, k string) // before the link fails
		write func(ctx context.Context, s kv.Store, k string, l kv.Locker) error
		// applied reports whether the reader sees the write applied.
		applied func(e *env, k string) bool
	}{
		{"Put", nil, func(ctx context.Context, s kv.Store, k string, _ kv.Locker) error {
			return s.Put(ctx, k, []byte("new"), nil)
		}, func(e *env, k string) bool { return e.valueIs(h.Reader, k, "new") }},
		{"AtomicPutCreate", nil, func(ctx context.Context, s kv.Store, k string, _ kv.Locker) error {
			_, _, err := s.AtomicPut(ctx, k, []byte("new"), nil, nil)
			return err
		}, func(e *env, k string) bool { return e.valueIs(h.Reader, k, "new") }},
		{"Delete", func(e *env, s kv.Store, k string) { e.mustPut(s, k, "old", nil) },
			func(ctx context.Context, s kv.Store, k string, _ kv.Locker) error { return s.Delete(ctx, k) },
			func(e *env, k string) bool { return !e.exists(h.Reader, k) }},
		{"GuardedPut", nil, func(ctx context.Context, _ kv.Store, k string, l kv.Locker) error {
			return l.GuardedPut(ctx, k, []byte("new"), nil)
		}, func(e *env, k string) bool { return e.valueIs(h.Reader, k, "new") }},
	}
	t.Run("CloseWhileInFlight", func(t *testing.T) {
		t.Parallel()
		testCloseInFlight(t, h)
	})
	t.Run("CallWithoutDeadline", func(t *testing.T) {
		t.Parallel()
		testCallWithoutDeadline(t, h)
	})
	t.Run("LockWaitsThroughAnOutage", func(t *testing.T) {
		t.Parallel()
		testLockThroughOutage(t, h)
	})
	for _, w := range writes {
		for _, lost := range []bool{true, false} {
			name := w.name + "/ReplyLost"
			if !lost {
				name = w.name + "/NeverSent"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				e := &env{T: t, ctx: ctx, prefix: fmt.Sprintf("kvtest/outcome/%s/%d", name, time.Now().UnixNano())}
				s, link := h.Open(t)
				t.Cleanup(func() { _ = s.Close() })
				k := e.key("k")
				if w.setup != nil {
					w.setup(e, s, k)
				}
				l, err := s.NewLock(ctx, e.key("lock"), nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.Lock(ctx); err != nil {
					t.Fatal(err)
				}
				if lost {
					link.Mute()
				} else {
					link.Cut()
					// Wait until the client has seen its connections go, so
					// that the write cannot leave on one: reads fail five
					// times in a row (an HTTP client may hold a few pooled
					// connections, each of which fails once when reused).
					fails := 0
					e.eventually(30*time.Second, "the client sees the link cut", func() bool {
						rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
						defer rcancel()
						_, err := s.Get(rctx, e.key("probe"), nil)
						if err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
							fails++
						} else {
							fails = 0
						}
						return fails >= 5
					})
				}
				wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
				err = w.write(wctx, s, k, l)
				wcancel()
				if lost {
					if !errors.Is(err, kv.ErrOutcomeUnknown) {
						t.Fatalf("%s whose reply was lost: got %v, want an error matching %v", w.name, err, kv.ErrOutcomeUnknown)
					}
					t.Logf("%s whose reply was lost: %v; applied: %v", w.name, err, w.applied(e, k))
					return
				}
				if err == nil || errors.Is(err, kv.ErrOutcomeUnknown) || (!errors.Is(err, kv.ErrNotReachable) && !errors.Is(err, context.DeadlineExceeded)) {
					t.Fatalf("%s that could not be sent: got %v, want %v (or the ctx error) and not %v", w.name, err, kv.ErrNotReachable, kv.ErrOutcomeUnknown)
				}
				if w.applied(e, k) {
					t.Fatalf("%s that could not be sent was applied", w.name)
				}
			})
		}
	}
}

// valueIs reports whether key holds value, as s reads it.
func (e *env) valueIs(s kv.Store, key, value string) bool {
	p, err := s.Get(e.ctx, key, nil)
	return err == nil && string(p.Value) == value
}

// testCloseInFlight: a write that the server applied, whose reply has not
// come back when the Store is closed, fails with ErrOutcomeUnknown (and
// ErrClosed), not as a write that did not happen.
func testCloseInFlight(t *testing.T, h OutcomeHarness) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	e := &env{T: t, ctx: ctx, prefix: fmt.Sprintf("kvtest/outcome/close/%d", time.Now().UnixNano())}
	s, link := h.Open(t)
	k := e.key("k")
	e.mustPut(s, k, "before", nil) // so that a driver's first request already writes
	link.Mute()
	res := make(chan error, 1)
	go func() { res <- s.Put(ctx, k, []byte("in flight"), nil) }()
	e.eventually(30*time.Second, "the write applied on the server", func() bool { return e.valueIs(h.Reader, k, "in flight") })
	_ = s.Close()
	select {
	case err := <-res:
		if !errors.Is(err, kv.ErrOutcomeUnknown) {
			t.Fatalf("Put in flight when the Store closed, applied by the server: got %v, want an error matching %v", err, kv.ErrOutcomeUnknown)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Put in flight did not return within 30s of Close")
	}
}

// testLockThroughOutage: a Lock that waits (Lock, not TryLock) rides out a
// client that cannot reach the server, as it rides out a lock held by
// another: it returns when it holds the lock or when its ctx ends, not
// with the first ErrNotReachable (the chaos suite's client-failover
// scenario found Consul's Lock returning the first 500 of an election).
func testLockThroughOutage(t *testing.T, h OutcomeHarness) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	e := &env{T: t, ctx: ctx, prefix: fmt.Sprintf("kvtest/outcome/lock-outage/%d", time.Now().UnixNano())}
	s, link := h.Open(t)
	t.Cleanup(func() { _ = s.Close() })
	l, err := s.NewLock(ctx, e.key("lock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	link.Cut()
	type result struct {
		lost <-chan struct{}
		err  error
	}
	res := make(chan result, 1)
	go func() {
		lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
		defer lcancel()
		lost, err := l.Lock(lctx)
		res <- result{lost, err}
	}()
	// The outage lasts half a second: shorter than every driver's session
	// or lease TTL in the suites, so that it is an outage, not an expiry.
	select {
	case r := <-res:
		t.Fatalf("Lock returned during the outage: %v; want it to wait until it holds the lock or its ctx ends", r.err)
	case <-time.After(500 * time.Millisecond):
	}
	link.Heal()
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatalf("Lock after the outage: %v", r.err)
		}
		select {
		case <-r.lost:
			t.Fatal("the lock taken after the outage is already lost")
		default:
		}
	case <-time.After(40 * time.Second):
		t.Fatal("Lock still waiting 40s after the outage ended")
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

// testCallWithoutDeadline: a call made with context.Background() while the
// server cannot be reached ends by the driver's RequestTimeout with an
// error that matches kv.ErrNotReachable and says which bound ended it
// (first hour: a Get was still blocked after 45 s).
func testCallWithoutDeadline(t *testing.T, h OutcomeHarness) {
	if h.RequestTimeout <= 0 {
		t.Fatal("OutcomeHarness.RequestTimeout is required")
	}
	s, link := h.Open(t)
	t.Cleanup(func() { _ = s.Close() })
	key := fmt.Sprintf("kvtest/outcome/no-deadline/%d", time.Now().UnixNano())
	if err := s.Put(t.Context(), key, []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	link.Cut()
	for _, c := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, key, nil); return err }},
		{"Put", func(ctx context.Context) error { return s.Put(ctx, key, []byte("w"), nil) }},
		{"List", func(ctx context.Context) error { _, err := s.List(ctx, key, nil); return err }},
	} {
		start := time.Now()
		res := make(chan error, 1)
		go func() { res <- c.call(context.Background()) }()
		slack := 5 * time.Second
		select {
		case err := <-res:
			took := time.Since(start)
			var rt *kv.RequestTimeoutError
			switch {
			case err == nil:
				t.Errorf("%s without a deadline while cut off: succeeded", c.name)
			case !errors.Is(err, kv.ErrNotReachable):
				t.Errorf("%s without a deadline while cut off: %v, want kv.ErrNotReachable", c.name, err)
			case took > h.RequestTimeout+slack:
				t.Errorf("%s without a deadline returned after %v, RequestTimeout %v", c.name, took, h.RequestTimeout)
			case took >= h.RequestTimeout && !errors.As(err, &rt):
				t.Errorf("%s ended by the RequestTimeout bound does not say so: %v", c.name, err)
			}
			t.Logf("%s without a deadline while cut off: %v after %v", c.name, err, took.Round(time.Millisecond))
		case <-time.After(h.RequestTimeout + slack):
			t.Fatalf("%s with context.Background() still waiting %v after the link was cut (RequestTimeout %v)", c.name, h.RequestTimeout+slack, h.RequestTimeout)
		}
	}
}
