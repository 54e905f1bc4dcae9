package kvtest

import (
	"errors"
	"fmt"
	"time"

	"github.com/regentkv/regent/kv"
)

func ttlCases() []testCase {
	return []testCase{
		{name: "TTLExpires", timeout: ttlTimeout(1), run: testTTLExpires},
		{name: "TTLRefreshedByPut", timeout: ttlTimeout(3), run: testTTLRefreshed},
		{name: "PutWithoutTTLMakesPermanent", timeout: ttlTimeout(1), run: testTTLRemoved},
		{name: "AtomicPutTTL", timeout: ttlTimeout(1), run: testAtomicPutTTL},
		{name: "TTLNegative", run: testTTLNegative},
		{name: "TTLKeepAliveWithoutTTL", run: testKeepAliveWithoutTTL},
		{name: "TTLBelowMinimum", timeout: ttlTimeout(1), run: testTTLBelowMin},
		{name: "KeepAliveAndLockTTLBelowMinimum", run: testKeepAliveTTLBelowMin},
		{name: "KeepAliveSurvivesWhileClientLives", timeout: ttlTimeout(3), run: testKeepAliveSurvives},
		{name: "KeepAliveGoneAfterClose", timeout: ttlTimeout(1), run: testKeepAliveClose},
		{name: "KeepAliveGoneAfterKill", timeout: ttlTimeout(1), run: testKeepAliveKill},
		{name: "KeepAliveDetachedByPlainPut", timeout: ttlTimeout(1), run: testKeepAliveDetached},
		{name: "AtomicPutKeepAlive", timeout: ttlTimeout(1), run: testAtomicPutKeepAlive},
		{name: "KeysBelowADeletedKeepAliveKey", run: testBelowDeletedKeepAlive},
	}
}

// pause waits d on the case's clock: used only where the thing checked is
// that time passed (a TTL that must not have fired yet), never to order
// steps.
func (e *env) pause(d time.Duration) {
	e.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-e.ctx.Done():
		e.Fatalf("case deadline reached: %v", e.ctx.Err())
	}
}

func (e *env) wantGone(s kv.Store, key string, within time.Duration) {
	e.Helper()
	e.eventually(within, "key "+key+" expired", func() bool { return !e.exists(s, key) })
	e.wantMissing(s, key)
}

func testTTLExpires(e *env) {
	s := e.store()
	k := e.key("k")
	start := time.Now()
	e.mustPut(s, k, "v", &kv.WriteOptions{TTL: e.ttl()})
	e.wantValue(s, k, "v")
	e.pause(e.ttl()/2 - time.Since(start))
	if !e.exists(s, k) {
		e.Fatalf("key with TTL %v gone after %v", e.ttl(), time.Since(start))
	}
	e.wantGone(s, k, e.overdue())
}

// testTTLRefreshed rewrites a TTL key every half TTL for longer than the
// key could live without the rewrites, checking before each one that it is
// still there.
func testTTLRefreshed(e *env) {
	s := e.store()
	k := e.key("k")
	ttl := e.ttl()
	opts := &kv.WriteOptions{TTL: ttl}
	e.mustPut(s, k, "v", opts)
	until := time.Now().Add(ttl + e.h.TTLSlack + ttl/2)
	for time.Now().Before(until) {
		e.pause(ttl / 2)
		if !e.exists(s, k) {
			e.Fatalf("key rewritten every %v with TTL %v vanished", ttl/2, ttl)
		}
		e.mustPut(s, k, "v", opts)
	}
	e.wantGone(s, k, e.overdue())
}

func testTTLRemoved(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v1", &kv.WriteOptions{TTL: e.ttl()})
	e.mustPut(s, k, "v2", nil)
	e.consistently(e.overdue(), "key rewritten without TTL exists", func() bool { return e.exists(s, k) })
	e.wantValue(s, k, "v2")
}

func testAtomicPutTTL(e *env) {
	s := e.store()
	created, updated := e.key("created"), e.key("updated")
	if _, _, err := s.AtomicPut(e.ctx, created, []byte("v"), nil, &kv.WriteOptions{TTL: e.ttl()}); err != nil {
		e.Fatalf("AtomicPut(create, TTL): %v", err)
	}
	e.mustPut(s, updated, "v1", nil)
	if _, _, err := s.AtomicPut(e.ctx, updated, []byte("v2"), e.mustGet(s, updated), &kv.WriteOptions{TTL: e.ttl()}); err != nil {
		e.Fatalf("AtomicPut(update, TTL): %v", err)
	}
	e.wantGone(s, created, e.overdue())
	e.wantGone(s, updated, e.overdue())
}

func wantTTLError(e *env, what string, err error) {
	e.Helper()
	var te *kv.TTLError
	if !errors.Is(err, kv.ErrInvalidTTL) || !errors.As(err, &te) {
		e.Fatalf("%s: got error %v, want a *kv.TTLError matching %v", what, err, kv.ErrInvalidTTL)
	}
}

func testTTLNegative(e *env) {
	s := e.store()
	k := e.key("k")
	opts := &kv.WriteOptions{TTL: -time.Second}
	wantTTLError(e, "Put(TTL -1s)", s.Put(e.ctx, k, []byte("v"), opts))
	_, _, err := s.AtomicPut(e.ctx, k, []byte("v"), nil, opts)
	wantTTLError(e, "AtomicPut(TTL -1s)", err)
	_, err = s.NewLock(e.ctx, e.key("lock"), &kv.LockOptions{TTL: -time.Second})
	wantTTLError(e, "NewLock(TTL -1s)", err)
	e.wantMissing(s, k)
}

func testKeepAliveWithoutTTL(e *env) {
	s := e.store()
	k := e.key("k")
	opts := &kv.WriteOptions{KeepAlive: true}
	wantTTLError(e, "Put(KeepAlive, no TTL)", s.Put(e.ctx, k, []byte("v"), opts))
	_, _, err := s.AtomicPut(e.ctx, k, []byte("v"), nil, opts)
	wantTTLError(e, "AtomicPut(KeepAlive, no TTL)", err)
	e.wantMissing(s, k)
}

// testTTLBelowMin pins the harness's MinTTL: below it is a *TTLError naming
// the minimum, at it the key is accepted and expires.
func testTTLBelowMin(e *env) {
	s := e.store()
	k := e.key("k")
	if min := e.h.MinTTL; min > time.Nanosecond {
		err := s.Put(e.ctx, k, []byte("v"), &kv.WriteOptions{TTL: min - time.Nanosecond})
		wantTTLError(e, "Put(TTL below MinTTL)", err)
		var te *kv.TTLError
		if errors.As(err, &te); te.Min != min {
			e.Fatalf("TTLError.Min = %v, want the harness MinTTL %v", te.Min, min)
		}
		e.wantMissing(s, k)
		wantOptionsChecked(e, s, &kv.WriteOptions{TTL: min - time.Nanosecond}, min)
	}
	wantOptionsChecked(e, s, &kv.WriteOptions{TTL: max(e.h.MinTTL, time.Millisecond)}, 0)
	wantOptionsChecked(e, s, &kv.WriteOptions{TTL: -time.Second}, -1)
	at := max(e.h.MinTTL, time.Millisecond)
	e.mustPut(s, k, "v", &kv.WriteOptions{TTL: at})
	e.wantGone(s, k, at+e.h.TTLSlack+2*time.Second)
}

// testKeepAliveTTLBelowMin pins MinKeepAliveTTL: a KeepAlive key or a lock
// with a shorter TTL would outlive a dead client by more than its TTL, so
// it is refused with a *TTLError naming the minimum, and nothing is written.
func testKeepAliveTTLBelowMin(e *env) {
	m := minKeepAliveTTL(e.h)
	if m <= time.Nanosecond {
		return // no minimum to pin
	}
	s := e.store()
	k := e.key("k")
	below := m - time.Nanosecond
	wantMin := func(what string, err error) {
		e.Helper()
		wantTTLError(e, what, err)
		var te *kv.TTLError
		if errors.As(err, &te); te.Min != m {
			e.Errorf("%s: TTLError.Min = %v, want %v", what, te.Min, m)
		}
	}
	wantMin("Put(KeepAlive, TTL below the minimum)", s.Put(e.ctx, k, []byte("v"), &kv.WriteOptions{TTL: below, KeepAlive: true}))
	wantOptionsChecked(e, s, &kv.WriteOptions{TTL: below, KeepAlive: true}, m)
	wantOptionsChecked(e, s, &kv.WriteOptions{TTL: m, KeepAlive: true}, 0)
	_, _, err := s.AtomicPut(e.ctx, k, []byte("v"), nil, &kv.WriteOptions{TTL: below, KeepAlive: true})
	wantMin("AtomicPut(KeepAlive, TTL below the minimum)", err)
	l, err := s.NewLock(e.ctx, e.key("lock"), &kv.LockOptions{TTL: below})
	if l != nil {
		e.Errorf("NewLock(TTL below the minimum) returned a Locker with error %v", err)
	}
	wantMin("NewLock(TTL below the minimum)", err)
	e.wantMissing(s, k)
	if l, err := s.NewLock(e.ctx, e.key("lock"), &kv.LockOptions{TTL: m}); err != nil || l == nil {
		e.Fatalf("NewLock(TTL at the minimum %v) = %v, %v", m, l, err)
	}
}

func testKeepAliveSurvives(e *env) {
	owner, other := e.store(), e.store()
	k := e.key("k")
	e.mustPut(owner, k, "alive", &kv.WriteOptions{TTL: e.ttl(), KeepAlive: true})
	e.consistently(e.ttl()*5/2+e.h.TTLSlack, "KeepAlive key exists while its client lives", func() bool { return e.exists(other, k) })
	e.wantValue(other, k, "alive")
}

func testKeepAliveClose(e *env) {
	owner, other := e.store(), e.store()
	k := e.key("k")
	e.mustPut(owner, k, "alive", &kv.WriteOptions{TTL: e.ttl(), KeepAlive: true})
	e.wantValue(other, k, "alive")
	if err := owner.Close(); err != nil {
		e.Fatalf("Close: %v", err)
	}
	e.wantGone(other, k, e.overdue())
}

func testKeepAliveKill(e *env) {
	owner, other := e.store(), e.store()
	k := e.key("k")
	e.mustPut(owner, k, "alive", &kv.WriteOptions{TTL: e.ttl(), KeepAlive: true})
	e.wantValue(other, k, "alive")
	e.h.Kill(e.T, owner)
	e.wantGone(other, k, e.overdue())
}

// testKeepAliveDetached: a plain Put over a KeepAlive key makes it
// permanent, like a plain Put over a TTL key, so it outlives its first
// writer.
func testKeepAliveDetached(e *env) {
	owner, other := e.store(), e.store()
	k := e.key("k")
	e.mustPut(owner, k, "session", &kv.WriteOptions{TTL: e.ttl(), KeepAlive: true})
	e.mustPut(owner, k, "permanent", nil)
	if err := owner.Close(); err != nil {
		e.Fatalf("Close: %v", err)
	}
	e.consistently(e.overdue(), "key rewritten without KeepAlive exists after its writer closed", func() bool { return e.exists(other, k) })
	e.wantValue(other, k, "permanent")
}

func testAtomicPutKeepAlive(e *env) {
	owner, other := e.store(), e.store()
	k := e.key("k")
	if _, _, err := owner.AtomicPut(e.ctx, k, []byte("mine"), nil, &kv.WriteOptions{TTL: e.ttl(), KeepAlive: true}); err != nil {
		e.Fatalf("AtomicPut(KeepAlive): %v", err)
	}
	e.wantValue(other, k, "mine")
	if err := owner.Close(); err != nil {
		e.Fatalf("Close: %v", err)
	}
	e.wantGone(other, k, e.overdue())
}

// testBelowDeletedKeepAlive: once a KeepAlive key is deleted, keys below
// its name are like any others (ZooKeeper's ephemeral znodes cannot have
// children; what a delete leaves there must not be one).
func testBelowDeletedKeepAlive(e *env) {
	s := e.store()
	k := e.key("svc")
	e.mustPut(s, k, "alive", &kv.WriteOptions{TTL: e.ttl(), KeepAlive: true})
	if err := s.Delete(e.ctx, k); err != nil {
		e.Fatalf("Delete: %v", err)
	}
	e.mustPut(s, k+"/child", "below", nil)
	e.wantValue(s, k+"/child", "below")
	e.wantMissing(s, k)
	// A KeepAlive key with keys below it: supported, or refused up front
	// with nothing written (ZooKeeper's ephemeral znodes have no children).
	err := s.Put(e.ctx, k, []byte("again"), &kv.WriteOptions{TTL: e.ttl(), KeepAlive: true})
	switch {
	case errors.Is(err, kv.ErrCallNotSupported):
		if errors.Is(err, kv.ErrOutcomeUnknown) {
			e.Errorf("a refused Put says its outcome is unknown: %v", err)
		}
		e.wantMissing(s, k)
	case err != nil:
		e.Fatalf("Put(KeepAlive) of a key with a key below it: %v", err)
	default:
		if err := s.Delete(e.ctx, k); err != nil {
			e.Fatalf("Delete of the KeepAlive key with a key below it: %v", err)
		}
	}
	e.wantValue(s, k+"/child", "below")
}

// wantOptionsChecked: a store's kv.OptionsChecker (every regent driver has
// one) agrees with its writes: opts is refused with a *TTLError whose Min
// is min (min < 0: any Min), or accepted when min is 0.
func wantOptionsChecked(e *env, s kv.Store, opts *kv.WriteOptions, min time.Duration) {
	e.Helper()
	c, ok := s.(kv.OptionsChecker)
	if !ok {
		e.Fatalf("%T does not implement kv.OptionsChecker", s)
	}
	err := c.CheckWriteOptions(opts)
	if min == 0 {
		if err != nil {
			e.Fatalf("CheckWriteOptions(%+v) = %v; want nil, as a write takes it", *opts, err)
		}
		return
	}
	wantTTLError(e, fmt.Sprintf("CheckWriteOptions(%+v)", *opts), err)
	var te *kv.TTLError
	if errors.As(err, &te); min > 0 && te.Min != min {
		e.Fatalf("CheckWriteOptions(%+v): TTLError.Min = %v; want %v, as a write says", *opts, te.Min, min)
	}
}
