package kvtest

import (
	"context"
	"errors"
	"time"

	"github.com/regentkv/regent/kv"
)

func closedCases() []testCase {
	return []testCase{
		{name: "CloseTwice", run: testCloseTwice},
		{name: "ClosedStoreMethods", run: testClosedStore},
		{name: "ClosedLockerMethods", run: testClosedLocker},
		{name: "ClosedStreamerMethods", run: testClosedStreamer},
		{name: "CloseEndsWatches", run: testCloseEndsWatches},
		{name: "CloseAfterKill", run: testCloseAfterKill},
		{name: "ChecksInOneOrder", run: testChecksInOneOrder},
	}
}

// testChecksInOneOrder: every driver checks a call in one order, so that a
// call that is wrong in several ways says the same on every backend: its
// arguments first (a caller's bug, whatever the Store's state), then the
// caller's ctx, then the Store's state.
func testChecksInOneOrder(e *env) {
	s := e.store()
	bad := e.prefix + "//bad"
	big := make([]byte, kv.MaxValueSize+1)
	argErrs := map[string]struct {
		call func(ctx context.Context) error
		want error
	}{
		"Put of a value too large": {func(ctx context.Context) error { return s.Put(ctx, e.key("v"), big, nil) }, kv.ErrValueTooLarge},
		"Put with a negative TTL": {func(ctx context.Context) error {
			return s.Put(ctx, e.key("v"), []byte("v"), &kv.WriteOptions{TTL: -time.Second})
		}, kv.ErrInvalidTTL},
		"AtomicPut of a value too large": {func(ctx context.Context) error {
			_, _, err := s.AtomicPut(ctx, e.key("v"), big, nil, nil)
			return err
		}, kv.ErrValueTooLarge},
		"NewLock with a RenewDeadline not below the TTL": {func(ctx context.Context) error {
			_, err := s.NewLock(ctx, e.key("l"), &kv.LockOptions{TTL: time.Hour, RenewDeadline: time.Hour})
			return err
		}, kv.ErrInvalidTTL},
	}
	held := e.newLocker(s)
	e.mustLock(held)
	wantArgs := func(ctx context.Context, what string) {
		e.Helper()
		e.wantAll(storeCalls(s, bad), ctx, kv.ErrInvalidKey)
		guarded := lockerCalls(held, bad) // Lock and TryLock take no key
		delete(guarded, "Lock")
		delete(guarded, "TryLock")
		e.wantAll(guarded, ctx, kv.ErrInvalidKey)
		for name, c := range argErrs {
			if err := c.call(ctx); !errors.Is(err, c.want) {
				e.Errorf("%s %s: got %v, want %v", name, what, err, c.want)
			}
		}
	}
	wantArgs(cancelled(), "with an ended ctx")
	if err := s.Close(); err != nil {
		e.Fatalf("Close: %v", err)
	}
	wantArgs(e.ctx, "on a closed store")
	e.wantAll(storeCalls(s, e.key("k")), cancelled(), context.Canceled)
}

// closeAsync closes s in a goroutine so that the case can keep reading the
// streams that Close must end.
func closeAsync(s kv.Store) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	return done
}

func testCloseTwice(e *env) {
	s := e.store()
	if err := s.Close(); err != nil {
		e.Fatalf("first Close = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		e.Fatalf("second Close = %v, want nil (Close is idempotent)", err)
	}
}

// storeCalls calls every kv.Store method but Close on key k.
func storeCalls(s kv.Store, k string) map[string]func(ctx context.Context) error {
	v := []byte("v")
	prev := &kv.KVPair{Key: k, Value: v, LastIndex: 1}
	return map[string]func(ctx context.Context) error{
		"Put":    func(ctx context.Context) error { return s.Put(ctx, k, v, nil) },
		"PutTTL": func(ctx context.Context) error { return s.Put(ctx, k, v, &kv.WriteOptions{TTL: time.Minute}) },
		"Get": func(ctx context.Context) error {
			_, err := s.Get(ctx, k, nil)
			return err
		},
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, k) },
		"Exists": func(ctx context.Context) error {
			_, err := s.Exists(ctx, k, nil)
			return err
		},
		"Watch": func(ctx context.Context) error {
			ch, err := s.Watch(ctx, k, nil)
			if ch != nil {
				return errors.New("returned a channel")
			}
			return err
		},
		"WatchTree": func(ctx context.Context) error {
			ch, err := s.WatchTree(ctx, k, nil)
			if ch != nil {
				return errors.New("returned a channel")
			}
			return err
		},
		"NewLock": func(ctx context.Context) error {
			_, err := s.NewLock(ctx, k+"/lock", nil)
			return err
		},
		"List": func(ctx context.Context) error {
			_, err := s.List(ctx, k, nil)
			return err
		},
		"DeleteTree": func(ctx context.Context) error { return s.DeleteTree(ctx, k) },
		"AtomicPutCreate": func(ctx context.Context) error {
			_, _, err := s.AtomicPut(ctx, k, v, nil, nil)
			return err
		},
		"AtomicPutUpdate": func(ctx context.Context) error {
			_, _, err := s.AtomicPut(ctx, k, v, prev, nil)
			return err
		},
		"AtomicDelete": func(ctx context.Context) error {
			_, err := s.AtomicDelete(ctx, k, prev)
			return err
		},
	}
}

func lockerCalls(l kv.Locker, k string) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"Lock": func(ctx context.Context) error {
			lost, err := l.Lock(ctx)
			if lost != nil {
				return errors.New("returned a channel")
			}
			return err
		},
		"TryLock": func(ctx context.Context) error {
			lost, err := l.TryLock(ctx)
			if lost != nil {
				return errors.New("returned a channel")
			}
			return err
		},
		"GuardedPut":    func(ctx context.Context) error { return l.GuardedPut(ctx, k, []byte("v"), nil) },
		"GuardedDelete": func(ctx context.Context) error { return l.GuardedDelete(ctx, k) },
	}
}

func streamerCalls(st kv.Streamer, k string) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"Snapshot": func(ctx context.Context) error {
			_, err := st.Snapshot(ctx, k)
			return err
		},
		"Events": func(ctx context.Context) error {
			ch, err := st.Events(ctx, k, 0)
			if ch != nil {
				return errors.New("returned a channel")
			}
			return err
		},
		"Revision": func(ctx context.Context) error {
			_, err := st.Revision(ctx)
			return err
		},
	}
}

func (e *env) wantAll(calls map[string]func(context.Context) error, ctx context.Context, target error) {
	e.Helper()
	for name, call := range calls {
		if err := call(ctx); !errors.Is(err, target) {
			e.Errorf("%s: got %v, want %v", name, err, target)
		}
	}
}

func testClosedStore(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v", nil)
	if err := s.Close(); err != nil {
		e.Fatalf("Close: %v", err)
	}
	e.wantAll(storeCalls(s, k), e.ctx, kv.ErrClosed)
	e.wantValue(e.store(), k, "v") // and nothing was written or deleted
}

func testClosedLocker(e *env) {
	s := e.store()
	l := e.newLocker(s)
	held := e.newLocker(s)
	e.mustLock(held)
	if err := s.Close(); err != nil {
		e.Fatalf("Close: %v", err)
	}
	e.wantAll(lockerCalls(l, e.key("g")), e.ctx, kv.ErrClosed)
	e.wantAll(lockerCalls(held, e.key("g")), e.ctx, kv.ErrClosed)
	// Close released the lock, so Unlock has nothing left to release: it
	// is idempotent and says nil, like any Unlock of a lock not held.
	for _, x := range []kv.Locker{l, held} {
		if err := x.Unlock(e.ctx); err != nil {
			e.Errorf("Unlock after Close = %v, want nil", err)
		}
		if tok := x.Token(); tok != 0 {
			e.Errorf("Token after Close = %d, want 0", tok)
		}
	}
	e.wantMissing(e.store(), e.key("g"))
}

func testClosedStreamer(e *env) {
	s := e.store()
	st, ok := s.(kv.Streamer)
	if !ok {
		// Not a Streamer: pin that Close still holds for the whole Store.
		if err := s.Close(); err != nil {
			e.Fatalf("Close: %v", err)
		}
		e.wantAll(storeCalls(s, e.key("k")), e.ctx, kv.ErrClosed)
		return
	}
	if err := s.Close(); err != nil {
		e.Fatalf("Close: %v", err)
	}
	e.wantAll(streamerCalls(st, e.prefix), e.ctx, kv.ErrClosed)
}

// testCloseEndsWatches opens every kind of stream, closes the store while
// reading them, and wants from each an update with ErrClosed, then the end.
func testCloseEndsWatches(e *env) {
	s := e.store()
	k := e.key("k")
	wch, err := s.Watch(e.ctx, k, nil)
	if err != nil {
		e.Fatalf("Watch: %v", err)
	}
	tch, err := s.WatchTree(e.ctx, e.prefix, nil)
	if err != nil {
		e.Fatalf("WatchTree: %v", err)
	}
	e.wantKeyUpdate(wch, k, "", true)
	e.nextTree(tch, e.prefix)
	var ech <-chan kv.EventBatch
	if st, ok := s.(kv.Streamer); ok {
		rev, err := st.Revision(e.ctx)
		if err != nil {
			e.Fatalf("Revision: %v", err)
		}
		if ech, err = st.Events(e.ctx, e.prefix, rev); err != nil {
			e.Fatalf("Events: %v", err)
		}
	}
	done := closeAsync(s)
	u := next(e, wch, updateWait, "Watch after Close")
	for u.Err == nil && u.Pair == nil {
		u = next(e, wch, updateWait, "Watch after Close")
	}
	e.wantErr("Watch's last update", u.Err, kv.ErrClosed)
	waitClosed(e, wch, closeWait, "Watch after its ErrClosed update")
	tu := next(e, tch, updateWait, "WatchTree after Close")
	e.wantErr("WatchTree's last update", tu.Err, kv.ErrClosed)
	waitClosed(e, tch, closeWait, "WatchTree after its ErrClosed update")
	if ech != nil {
		for {
			b := next(e, ech, updateWait, "Events after Close")
			if b.Err != nil {
				e.wantErr("Events' last batch", b.Err, kv.ErrClosed)
				break
			}
		}
		waitClosed(e, ech, closeWait, "Events after its ErrClosed batch")
	}
	if err := next(e, done, updateWait, "Close"); err != nil {
		e.Fatalf("Close = %v, want nil", err)
	}
}

func testCloseAfterKill(e *env) {
	s := e.store()
	ch, err := s.Watch(e.ctx, e.key("k"), nil)
	if err != nil {
		e.Fatalf("Watch: %v", err)
	}
	e.mustPut(s, e.key("k"), "v", &kv.WriteOptions{TTL: e.ttl(), KeepAlive: true})
	e.h.Kill(e.T, s)
	done := closeAsync(s)
	waitClosed(e, ch, updateWait, "Watch of a killed and closed store")
	if _, ok := recv(e, done, updateWait, "Close after Kill"); !ok {
		e.Fatalf("Close after Kill did not return")
	}
}
