package kvtest

import (
	"context"
	"errors"
	"time"

	"github.com/regentkv/regent/kv"
)

func lockCases() []testCase {
	return []testCase{
		{name: "LockMutualExclusion", run: testLockMutex},
		{name: "LockTryLockHeld", run: testTryLockHeld},
		{name: "LockAgainWhileHeld", run: testLockAgainWhileHeld},
		{name: "LockHonoursContext", run: testLockCtx},
		{name: "LockLostClosesOnUnlock", run: testLostOnUnlock},
		{name: "LockLostClosesOnStoreClose", run: testLostOnClose},
		{name: "LockReleasedAfterHolderKilled", timeout: ttlTimeout(1), run: testLockKilled(0)},
		{name: "LockCutOffHolderStopsFirstWithLongRenewDeadline", timeout: ttlTimeout(1), run: testLockKilled(9)},
		{name: "LockRenewDeadlineMustBeBelowTTL", run: testRenewDeadlineBelowTTL},
		{name: "LockUnlockWithEndedContext", timeout: ttlTimeout(2), run: testUnlockEndedCtx},
		{name: "LockUnlockIdempotent", run: testUnlockIdempotent},
		{name: "LockFencingTokens", run: testFencingTokens},
		{name: "LockRelockSameLocker", run: testRelock},
		{name: "LockGuardedWrites", run: testGuardedWrites},
		{name: "LockGuardedWritesNeverLocked", run: testGuardedNeverLocked},
		{name: "LockGuardedPutTTL", timeout: ttlTimeout(1), run: testGuardedPutTTL},
		{name: "LockGuardedWritesDeposed", timeout: ttlTimeout(1), run: testGuardedDeposed},
		{name: "LockInternalsInvisible", run: testLockInvisible},
		{name: "LockSurvivesDeleteTree", run: testLockSurvivesDeleteTree},
		{name: "LockValue", run: testLockValue},
		{name: "LockKeysIndependent", run: testLockKeysIndependent},
	}
}

// newLocker returns a Locker on the case's "lock" key with the case TTL.
func (e *env) newLocker(s kv.Store) kv.Locker {
	e.Helper()
	l, err := s.NewLock(e.ctx, e.key("lock"), &kv.LockOptions{TTL: e.ttl()})
	if err != nil {
		e.Fatalf("NewLock: %v", err)
	}
	if l == nil {
		e.Fatalf("NewLock returned a nil Locker")
	}
	return l
}

func (e *env) mustLock(l kv.Locker) <-chan struct{} {
	e.Helper()
	lost, err := l.Lock(e.ctx)
	if err != nil {
		e.Fatalf("Lock: %v", err)
	}
	if lost == nil {
		e.Fatalf("Lock returned a nil lost channel with a nil error")
	}
	return lost
}

func (e *env) mustUnlock(l kv.Locker) {
	e.Helper()
	if err := l.Unlock(e.ctx); err != nil {
		e.Fatalf("Unlock: %v", err)
	}
}

func (e *env) wantHeldElsewhere(l kv.Locker) {
	e.Helper()
	lost, err := l.TryLock(e.ctx)
	if !errors.Is(err, kv.ErrLockHeld) || lost != nil {
		e.Fatalf("TryLock on a held lock = %v, %v; want nil, %v", lost, err, kv.ErrLockHeld)
	}
}

func wantOpen(e *env, lost <-chan struct{}, what string) {
	e.Helper()
	select {
	case <-lost:
		e.Fatalf("%s: lost channel closed while the lock is held", what)
	default:
	}
}

type lockResult struct {
	lost <-chan struct{}
	err  error
}

// lockAsync runs l.Lock in a goroutine; the result arrives on the channel.
func lockAsync(ctx context.Context, l kv.Locker) <-chan lockResult {
	res := make(chan lockResult, 1)
	go func() {
		lost, err := l.Lock(ctx)
		res <- lockResult{lost, err}
	}()
	return res
}

func testLockMutex(e *env) {
	a, b := e.newLocker(e.store()), e.newLocker(e.store())
	lostA := e.mustLock(a)
	tokA := a.Token()
	res := lockAsync(e.ctx, b)
	quiet(e, res, 500*time.Millisecond, "second Lock while the first holds")
	e.mustUnlock(a)
	r := next(e, res, updateWait, "second Lock after Unlock")
	if r.err != nil || r.lost == nil {
		e.Fatalf("second Lock = %v, %v; want a channel, nil", r.lost, r.err)
	}
	waitClosed(e, lostA, closeWait, "first holder's lost channel")
	if tokB := b.Token(); tokB <= tokA {
		e.Fatalf("second holder's token %d, not above the first's %d", tokB, tokA)
	}
	wantOpen(e, r.lost, "second holder")
	e.mustUnlock(b)
}

func testTryLockHeld(e *env) {
	a, b := e.newLocker(e.store()), e.newLocker(e.store())
	e.mustLock(a)
	e.wantHeldElsewhere(b)
	if tok := b.Token(); tok != 0 {
		e.Fatalf("Token of a Locker that failed TryLock = %d, want 0", tok)
	}
	e.mustUnlock(a)
	lost, err := b.TryLock(e.ctx)
	if err != nil || lost == nil {
		e.Fatalf("TryLock on a free lock = %v, %v", lost, err)
	}
	e.mustUnlock(b)
}

func testLockAgainWhileHeld(e *env) {
	a := e.newLocker(e.store())
	lost := e.mustLock(a)
	tok := a.Token()
	_, err := a.Lock(e.ctx)
	e.wantErr("Lock while this Locker holds the lock", err, kv.ErrLockHeld)
	_, err = a.TryLock(e.ctx)
	e.wantErr("TryLock while this Locker holds the lock", err, kv.ErrLockHeld)
	if got := a.Token(); got != tok {
		e.Fatalf("Token changed from %d to %d by a refused Lock", tok, got)
	}
	wantOpen(e, lost, "after refused re-Lock")
	e.mustUnlock(a)
}

func testLockCtx(e *env) {
	a, b, c := e.newLocker(e.store()), e.newLocker(e.store()), e.newLocker(e.store())
	e.mustLock(a)
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	lost, err := b.Lock(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || lost != nil {
		e.Fatalf("Lock with an expiring ctx = %v, %v; want nil, %v", lost, err, context.DeadlineExceeded)
	}
	ctx2, cancel2 := context.WithCancel(e.ctx)
	res := lockAsync(ctx2, b)
	quiet(e, res, 200*time.Millisecond, "Lock while held")
	cancel2()
	r := next(e, res, closeWait, "cancelled Lock")
	if !errors.Is(r.err, context.Canceled) || r.lost != nil {
		e.Fatalf("cancelled Lock = %v, %v; want nil, %v", r.lost, r.err, context.Canceled)
	}
	e.wantHeldElsewhere(c)
	e.mustUnlock(a)
	// No waiter of b's was left queued ahead of c.
	var got <-chan struct{}
	e.eventually(updateWait, "TryLock after the holder unlocked", func() bool {
		got, err = c.TryLock(e.ctx)
		return err == nil
	})
	if got == nil {
		e.Fatalf("TryLock returned a nil channel")
	}
	e.mustUnlock(c)
}

func testLostOnUnlock(e *env) {
	a := e.newLocker(e.store())
	lost := e.mustLock(a)
	wantOpen(e, lost, "after Lock")
	e.mustUnlock(a)
	waitClosed(e, lost, closeWait, "lost channel after Unlock")
	if tok := a.Token(); tok != 0 {
		e.Fatalf("Token after Unlock = %d, want 0", tok)
	}
}

func testLostOnClose(e *env) {
	sa := e.store()
	a, b := e.newLocker(sa), e.newLocker(e.store())
	lost := e.mustLock(a)
	if err := sa.Close(); err != nil {
		e.Fatalf("Close: %v", err)
	}
	waitClosed(e, lost, updateWait, "lost channel after the holder's store closed")
	ctx, cancel := context.WithTimeout(e.ctx, e.overdue())
	defer cancel()
	if _, err := b.Lock(ctx); err != nil {
		e.Fatalf("Lock after the holder closed its store: %v", err)
	}
	e.mustUnlock(b)
}

// testLockKilled kills a holder whose RenewDeadline is renewTenths/10 of
// the TTL (0: the driver's default) and checks that the lock passes on,
// and that the holder's lost channel had closed by then.
func testLockKilled(renewTenths int) func(e *env) {
	return func(e *env) {
		sa := e.store()
		opts := &kv.LockOptions{TTL: e.ttl(), RenewDeadline: e.ttl() * time.Duration(renewTenths) / 10}
		a, err := sa.NewLock(e.ctx, e.key("lock"), opts)
		if err != nil {
			e.Fatalf("NewLock(%+v): %v", *opts, err)
		}
		b := e.newLocker(e.store())
		lostA := e.mustLock(a)
		tokA := a.Token()
		e.h.Kill(e.T, sa)
		ctx, cancel := context.WithTimeout(e.ctx, e.overdue())
		defer cancel()
		lost, err := b.Lock(ctx)
		if err != nil {
			e.Fatalf("Lock within %v of the holder's death: %v", e.overdue(), err)
		}
		// A killed client is a cut-off one: its renew deadline, below the
		// TTL, ran out before the server could hand the lock over.
		select {
		case <-lostA:
		default:
			e.Fatalf("the lock passed on while the cut-off holder's lost channel was still open (RenewDeadline %v, TTL %v)", opts.RenewDeadline, opts.TTL)
		}
		if tokB := b.Token(); tokB <= tokA {
			e.Fatalf("token after takeover %d, not above the dead holder's %d", tokB, tokA)
		}
		wantOpen(e, lost, "new holder")
		e.mustUnlock(b)
	}
}

// testRenewDeadlineBelowTTL: a RenewDeadline at or above the TTL would let
// a cut-off holder believe it holds the lock after the server handed it on.
func testRenewDeadlineBelowTTL(e *env) {
	s := e.store()
	ttl := e.ttl()
	for _, rd := range []time.Duration{ttl, 3 * ttl, -time.Second} {
		l, err := s.NewLock(e.ctx, e.key("lock"), &kv.LockOptions{TTL: ttl, RenewDeadline: rd})
		if l != nil {
			e.Errorf("NewLock(TTL %v, RenewDeadline %v) returned a Locker with error %v", ttl, rd, err)
		}
		wantTTLError(e, "NewLock with RenewDeadline "+rd.String()+" and TTL "+ttl.String(), err)
	}
	l, err := s.NewLock(e.ctx, e.key("lock"), &kv.LockOptions{TTL: ttl, RenewDeadline: ttl / 2})
	if err != nil || l == nil {
		e.Fatalf("NewLock(TTL %v, RenewDeadline %v) = %v, %v", ttl, ttl/2, l, err)
	}
	e.mustLock(l)
	e.mustUnlock(l)
}

// testUnlockEndedCtx: an Unlock whose ctx has ended still ends the hold,
// here and on the server: no half state where the Locker has let go but
// the server keeps the lock for its whole TTL. The lock's TTL is long, so
// that a release by expiry cannot pass for a release by Unlock.
func testUnlockEndedCtx(e *env) {
	ttl := max(e.ttl(), 10*time.Second)
	sa := e.store()
	a, err := sa.NewLock(e.ctx, e.key("lock"), &kv.LockOptions{TTL: ttl})
	if err != nil {
		e.Fatalf("NewLock: %v", err)
	}
	b, err := e.store().NewLock(e.ctx, e.key("lock"), &kv.LockOptions{TTL: ttl})
	if err != nil {
		e.Fatalf("NewLock: %v", err)
	}
	lost := e.mustLock(a)
	err = a.Unlock(cancelled())
	if err != nil && !errors.Is(err, context.Canceled) {
		e.Errorf("Unlock with a cancelled ctx = %v, want nil or %v", err, context.Canceled)
	}
	waitClosed(e, lost, closeWait, "lost channel after Unlock with a cancelled ctx")
	if tok := a.Token(); tok != 0 {
		e.Errorf("Token after Unlock with a cancelled ctx = %d, want 0", tok)
	}
	e.wantErr("GuardedPut after Unlock with a cancelled ctx", a.GuardedPut(e.ctx, e.key("g"), []byte("v"), nil), kv.ErrNotLocked)
	ctx, cancel := context.WithTimeout(e.ctx, ttl/2)
	defer cancel()
	if _, err := b.Lock(ctx); err != nil {
		e.Fatalf("Lock by another within %v (half the TTL) of an Unlock with a cancelled ctx: %v", ttl/2, err)
	}
	if err := a.Unlock(e.ctx); err != nil {
		e.Errorf("Unlock again = %v, want nil", err)
	}
	e.wantHeldElsewhere(a)
	e.mustUnlock(b)
}

func testUnlockIdempotent(e *env) {
	a := e.newLocker(e.store())
	if err := a.Unlock(e.ctx); err != nil {
		e.Fatalf("Unlock before Lock = %v, want nil", err)
	}
	e.mustLock(a)
	e.mustUnlock(a)
	if err := a.Unlock(e.ctx); err != nil {
		e.Fatalf("second Unlock = %v, want nil", err)
	}
	b := e.newLocker(e.store())
	e.mustLock(b) // the second Unlock released nothing of b's
	if err := a.Unlock(e.ctx); err != nil {
		e.Fatalf("Unlock of a lock held by another = %v, want nil", err)
	}
	e.wantHeldElsewhere(a)
	e.mustUnlock(b)
}

func testFencingTokens(e *env) {
	a, b := e.newLocker(e.store()), e.newLocker(e.store())
	if tok := a.Token(); tok != 0 {
		e.Fatalf("Token before Lock = %d, want 0", tok)
	}
	var last uint64
	for i, l := range []kv.Locker{a, b, a, b, b} {
		e.mustLock(l)
		tok := l.Token()
		if tok <= last {
			e.Fatalf("hold %d: token %d, not above the previous %d", i, tok, last)
		}
		last = tok
		e.mustUnlock(l)
		if tok := l.Token(); tok != 0 {
			e.Fatalf("Token after Unlock = %d, want 0", tok)
		}
	}
}

func testRelock(e *env) {
	a := e.newLocker(e.store())
	var prev <-chan struct{}
	var last uint64
	for i := range 3 {
		lost := e.mustLock(a)
		if lost == prev {
			e.Fatalf("hold %d reuses the previous (closed) lost channel", i)
		}
		wantOpen(e, lost, "relock")
		if tok := a.Token(); tok <= last {
			e.Fatalf("hold %d: token %d, not above %d", i, tok, last)
		} else {
			last = tok
		}
		e.mustUnlock(a)
		waitClosed(e, lost, closeWait, "lost after Unlock")
		prev = lost
	}
}

func testGuardedWrites(e *env) {
	s := e.store()
	a := e.newLocker(s)
	k := e.key("guarded")
	e.mustLock(a)
	if err := a.GuardedPut(e.ctx, k, []byte("v1"), nil); err != nil {
		e.Fatalf("GuardedPut while held: %v", err)
	}
	e.wantValue(s, k, "v1")
	if err := a.GuardedDelete(e.ctx, k); err != nil {
		e.Fatalf("GuardedDelete while held: %v", err)
	}
	e.wantMissing(s, k)
	e.wantErr("GuardedDelete of a missing key", a.GuardedDelete(e.ctx, k), kv.ErrKeyNotFound)
	e.wantErr("GuardedPut(nil)", a.GuardedPut(e.ctx, k, nil, nil), kv.ErrNilValue)
	if err := a.GuardedPut(e.ctx, k, []byte("v2"), nil); err != nil {
		e.Fatalf("GuardedPut: %v", err)
	}
	e.mustUnlock(a)
	e.wantErr("GuardedPut after Unlock", a.GuardedPut(e.ctx, k, []byte("v3"), nil), kv.ErrNotLocked)
	e.wantErr("GuardedDelete after Unlock", a.GuardedDelete(e.ctx, k), kv.ErrNotLocked)
	e.wantValue(s, k, "v2")
}

func testGuardedNeverLocked(e *env) {
	s := e.store()
	a := e.newLocker(s)
	k := e.key("guarded")
	e.wantErr("GuardedPut before Lock", a.GuardedPut(e.ctx, k, []byte("v"), nil), kv.ErrNotLocked)
	e.mustPut(s, k, "v", nil)
	e.wantErr("GuardedDelete before Lock", a.GuardedDelete(e.ctx, k), kv.ErrNotLocked)
	e.wantValue(s, k, "v")
}

// testGuardedDeposed: the holder dies, another takes over, and a write
// through the dead holder's Locker is refused and has no effect.
func testGuardedDeposed(e *env) {
	sa, sb := e.store(), e.store()
	a, b := e.newLocker(sa), e.newLocker(sb)
	k := e.key("guarded")
	e.mustLock(a)
	e.h.Kill(e.T, sa)
	ctx, cancel := context.WithTimeout(e.ctx, e.overdue())
	defer cancel()
	if _, err := b.Lock(ctx); err != nil {
		e.Fatalf("Lock after the holder died: %v", err)
	}
	for what, err := range map[string]error{
		"GuardedPut":    a.GuardedPut(e.ctx, k, []byte("stale"), nil),
		"GuardedDelete": a.GuardedDelete(e.ctx, k),
	} {
		if !errors.Is(err, kv.ErrLockLost) && !errors.Is(err, kv.ErrNotLocked) {
			e.Errorf("%s by the deposed holder: got %v, want %v or %v", what, err, kv.ErrLockLost, kv.ErrNotLocked)
		}
	}
	e.wantMissing(sb, k)
	if err := b.GuardedPut(e.ctx, k, []byte("fresh"), nil); err != nil {
		e.Fatalf("GuardedPut by the new holder: %v", err)
	}
	e.wantValue(sb, k, "fresh")
	e.mustUnlock(b)
}

// testLockInvisible holds a lock under the case prefix and checks that no
// read of the prefix shows its bookkeeping.
func testLockInvisible(e *env) {
	s := e.store()
	u := e.key("user")
	e.mustPut(s, u, "user value", nil)
	var snapRev uint64
	st, streamer := s.(kv.Streamer)
	if streamer {
		snap, err := st.Snapshot(e.ctx, e.prefix)
		if err != nil {
			e.Fatalf("Snapshot: %v", err)
		}
		snapRev = snap.Revision
	}
	a := e.newLocker(s)
	e.mustLock(a)
	want := map[string]string{u: "user value"}
	e.wantList(s, e.prefix, want)
	l, err := s.List(e.ctx, "", nil)
	if err != nil {
		e.Fatalf("List(root): %v", err)
	}
	for _, p := range l {
		if p.Key == e.key("lock") || (len(p.Key) > len(e.prefix) && p.Key[:len(e.prefix)] == e.prefix && p.Key != u) {
			e.Fatalf("List(root) shows lock internals: %q", p.Key)
		}
	}
	ch, err := s.WatchTree(e.ctx, e.prefix, nil)
	if err != nil {
		e.Fatalf("WatchTree: %v", err)
	}
	e.checkPairs("WatchTree first update", e.nextTree(ch, e.prefix).Pairs, want)
	e.mustPut(s, e.key("after"), "x", nil)
	want[e.key("after")] = "x"
	e.checkPairs("WatchTree after a put", e.nextTree(ch, e.prefix).Pairs, want)
	if streamer {
		evs, err := st.Events(e.ctx, e.prefix, snapRev)
		if err != nil {
			e.Fatalf("Events: %v", err)
		}
		got := collectEvents(e, evs, 1)
		if got[0].Pair.Key != e.key("after") || got[0].Type != kv.EventPut {
			e.Fatalf("first event after the lock was taken: %v %q, want PUT %q", got[0].Type, got[0].Pair.Key, e.key("after"))
		}
	}
	e.mustUnlock(a)
	e.wantList(s, e.prefix, want)
}

func testLockSurvivesDeleteTree(e *env) {
	s := e.store()
	a, b := e.newLocker(s), e.newLocker(e.store())
	lost := e.mustLock(a)
	tok := a.Token()
	e.mustPut(s, e.key("user"), "v", nil)
	if err := s.DeleteTree(e.ctx, e.prefix); err != nil {
		e.Fatalf("DeleteTree: %v", err)
	}
	e.wantList(s, e.prefix, map[string]string{})
	e.wantHeldElsewhere(b)
	wantOpen(e, lost, "after DeleteTree of the lock's parent")
	if got := a.Token(); got != tok {
		e.Fatalf("Token after DeleteTree = %d, want %d", got, tok)
	}
	if err := a.GuardedPut(e.ctx, e.key("guarded"), []byte("v"), nil); err != nil {
		e.Fatalf("GuardedPut after DeleteTree: %v", err)
	}
	e.mustUnlock(a)
}

func testLockValue(e *env) {
	s := e.store()
	l, err := s.NewLock(e.ctx, e.key("lock"), &kv.LockOptions{Value: []byte("holder-1"), TTL: e.ttl()})
	if err != nil {
		e.Fatalf("NewLock(Value): %v", err)
	}
	e.mustLock(l)
	e.wantList(s, e.prefix, map[string]string{})
	e.mustUnlock(l)
	l2, err := s.NewLock(e.ctx, e.key("lock"), nil)
	if err != nil {
		e.Fatalf("NewLock(nil options): %v", err)
	}
	e.mustLock(l2)
	e.mustUnlock(l2)
}

func testLockKeysIndependent(e *env) {
	sa, sb := e.store(), e.store()
	a, err := sa.NewLock(e.ctx, e.key("one"), &kv.LockOptions{TTL: e.ttl()})
	if err != nil {
		e.Fatalf("NewLock: %v", err)
	}
	b, err := sb.NewLock(e.ctx, e.key("one", "two"), &kv.LockOptions{TTL: e.ttl()})
	if err != nil {
		e.Fatalf("NewLock: %v", err)
	}
	e.mustLock(a)
	lost, err := b.TryLock(e.ctx)
	if err != nil || lost == nil {
		e.Fatalf("TryLock of a nested key while its parent is locked = %v, %v", lost, err)
	}
	e.mustUnlock(b)
	e.mustUnlock(a)
}

// testGuardedPutTTL: a guarded write with a TTL expires like any other, or
// is refused with ErrCallNotSupported (ZooKeeper cannot create TTL nodes in
// a multi).
func testGuardedPutTTL(e *env) {
	s := e.store()
	a := e.newLocker(s)
	k := e.key("guarded")
	e.mustLock(a)
	err := a.GuardedPut(e.ctx, k, []byte("v"), &kv.WriteOptions{TTL: e.ttl()})
	if errors.Is(err, kv.ErrCallNotSupported) {
		// A backend that cannot make a guarded write expire says so, and
		// writes nothing.
		e.wantMissing(s, k)
		e.mustUnlock(a)
		return
	}
	if err != nil {
		e.Fatalf("GuardedPut(TTL): %v", err)
	}
	e.wantValue(s, k, "v")
	e.wantGone(s, k, e.overdue())
	e.mustUnlock(a)
}
