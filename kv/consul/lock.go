package consul

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// NewLock returns a Locker on key. The lock lives at an internal key outside
// Root, held by a session with behaviour "delete" and Config.LockDelay that
// the server invalidates the lock's TTL (LockOptions.TTL, default
// Config.LockTTL, at least Store.MinTTL) after its last renewal.
// RenewDeadline defaults to 2/3 of the TTL and is shortened to leave at
// least max(TTL/10, 200ms) before that earliest expiry.
func (s *Store) NewLock(ctx context.Context, key string, opts *kv.LockOptions) (kv.Locker, error) {
	k, lk, err := driver.NewLockArgs(ctx, key, opts, driver.LockPolicy{
		DefaultTTL: s.cfg.LockTTL,
		CheckTTL:   func(ttl time.Duration) error { return s.checkTTL(&kv.WriteOptions{TTL: ttl}) },
		// Loss must be declared before the server can expire the session
		// and hand the lock on, with room for the holder to act on it.
		Margin: driver.LostMargin,
	}, s.check())
	if err != nil {
		return nil, fmt.Errorf("consul: new lock: %w", err)
	}
	return &locker{s: s, key: k, ck: s.lockKey(k), value: lk.Value, ttl: lk.TTL, deadline: lk.Deadline(lk.TTL)}, nil
}

// locker is a kv.Locker on Consul sessions.
//
// Lost signal: two goroutines watch a hold. One renews the session (every
// TTL/6: the session's TTL is half the lock's, see sessionTTL) and
// declares the lock lost at once when the server no longer knows the
// session, or when no renewal has succeeded for RenewDeadline (default 2/3
// TTL, at most TTL - driver.LostMargin), retrying transient failures until then.
// The server cannot expire the session before TTL after the send time of
// the last successful renewal (or of the create request), which is where
// the renewer's clock starts, so the holder stops at least
// TTL-RenewDeadline before anyone else can acquire. The other follows the
// lock key with blocking queries and declares loss as soon as the key is
// gone or held by another session (an operator destroyed the session, or
// deleted the key).
//
// Fencing token: the lock key's ModifyIndex when acquired, a raft index,
// so it increases across all holders of all keys. (LockIndex would not do:
// it counts per key and restarts when the key is deleted, which the
// "delete" behaviour does on every expiry.)
type locker struct {
	s        *Store
	key, ck  string
	value    []byte
	ttl      time.Duration
	deadline time.Duration

	mu   sync.Mutex // serialises Lock, TryLock and Unlock
	held atomic.Pointer[hold]
}

type hold struct {
	l       *locker
	session string
	token   uint64
	lost    chan struct{}

	ctx      context.Context // ends when the hold ends: lost, unlocked, Store closed
	cancel   context.CancelFunc
	lostOnce sync.Once
	isLost   atomic.Bool
	wg       sync.WaitGroup
}

func (l *locker) Lock(ctx context.Context) (<-chan struct{}, error) { return l.lock(ctx, true) }

func (l *locker) TryLock(ctx context.Context) (<-chan struct{}, error) {
	ctx, done := kv.BoundRequest(ctx, l.s.cfg.RequestTimeout) // one attempt: bounded, unlike Lock
	defer done()
	return l.lock(ctx, false)
}

func (l *locker) lock(ctx context.Context, wait bool) (<-chan struct{}, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.s.usable(ctx); err != nil {
		return nil, fmt.Errorf("consul: lock %q: %w", l.key, err)
	}
	if h := l.held.Load(); h != nil {
		if !h.isLost.Load() {
			return nil, fmt.Errorf("consul: lock %q: %w: this Locker holds it", l.key, kv.ErrLockHeld)
		}
		l.drop(h)
	}
	// A waiting Lock rides out trouble with the cluster (an election, the
	// agent's server lost, a session lost while queued) until ctx ends,
	// with a new session each time: the attempt that failed destroyed its
	// own, or it expires. TryLock makes one attempt.
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(20*time.Millisecond),
		backoff.WithMaxInterval(time.Second), backoff.WithMaxElapsedTime(0))
	for {
		h, err := l.newHold(ctx)
		var lost <-chan struct{}
		if err == nil {
			lost, err = l.acquire(ctx, h, wait)
		}
		switch {
		case errors.Is(err, errRetrySession):
			continue
		case err == nil || !wait || ctx.Err() != nil || l.s.check() != nil || !errors.Is(err, kv.ErrNotReachable):
			return lost, err
		}
		l.s.log.Debug("consul: lock attempt failed; trying again", zap.String("key", l.key), zap.Error(err))
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("consul: lock %q: %w (last error: %s)", l.key, ctx.Err(), err.Error())
		}
	}
}

// errRetrySession: the session of a waiter died before it got the lock;
// waiting goes on with a new one.
var errRetrySession = errors.New("consul: waiter's session lost")

// newHold creates a lock session and starts renewing it: a waiter renews
// too, since waiting can outlast the TTL.
func (l *locker) newHold(ctx context.Context) (*hold, error) {
	session, sent, err := l.s.createSession(ctx, "regent-lock", l.ttl, api.SessionBehaviorDelete, l.s.cfg.LockDelay)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithCancel(l.s.ctx)
	h := &hold{l: l, session: session, lost: make(chan struct{}), ctx: hctx, cancel: cancel}
	if err := h.spawn(func() { l.s.renew(hctx, session, sent, l.ttl, l.deadline, func(error) { h.markLost() }) }); err != nil {
		l.abandon(h)
		return nil, fmt.Errorf("consul: lock %q: %w", l.key, err)
	}
	return h, nil
}

// acquire takes the lock with h's session, waiting for it if wait is set.
func (l *locker) acquire(ctx context.Context, h *hold, wait bool) (<-chan struct{}, error) {
	// Waiting ends with the caller's ctx, or when the session dies.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	defer context.AfterFunc(h.ctx, wcancel)()
	free := false
	for {
		op := kvOp(api.KVLock, l.ck)
		op.KV.Value, op.KV.Session = l.value, h.session
		res, err := l.s.txn(wctx, "lock", l.key, api.TxnOps{op})
		var f *txnFailure
		switch {
		case err == nil:
			return l.acquired(h, lastKV(res))
		case !errors.As(err, &f):
			// waitErr first: abandon marks h lost, which waitErr would
			// take for a session lost while waiting, and retry (a refused
			// lock spun on that, making and destroying sessions).
			werr := l.waitErr(ctx, h, err)
			l.abandon(h)
			return nil, werr
		case !wait:
			l.abandon(h)
			return nil, fmt.Errorf("consul: try lock %q: %w", l.key, kv.ErrLockHeld)
		}
		if free {
			// The key looked free, yet the lock failed: lock-delay of an
			// invalidated session. Back off rather than spin.
			t := time.NewTimer(max(l.s.cfg.LockDelay/4, 20*time.Millisecond))
			select {
			case <-wctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		if free, err = l.waitFree(wctx); err != nil {
			werr := l.waitErr(ctx, h, err)
			l.abandon(h)
			return nil, werr
		}
	}
}

// waitErr explains why waiting ended.
func (l *locker) waitErr(ctx context.Context, h *hold, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("consul: lock %q: %w", l.key, ctx.Err())
	case l.s.check() != nil:
		return fmt.Errorf("consul: lock %q: %w", l.key, kv.ErrClosed)
	case h.isLost.Load():
		l.s.log.Warn("consul: a lock waiter's session was lost; waiting with a new one", zap.String("key", l.key))
		return errRetrySession
	}
	return err
}

// waitFree blocks until the lock key is absent or not held. It reports
// whether the very first answer already showed it free.
func (l *locker) waitFree(ctx context.Context) (bool, error) {
	b := l.s.newBlocker(0, l.s.cfg.WaitTime, false)
	b.index = 0
	for first := true; ; first = false {
		var p *api.KVPair
		out, err := b.next(ctx, "lock", l.key, func(q *api.QueryOptions) (uint64, error) {
			var meta *api.QueryMeta
			var err error
			p, meta, err = l.s.kv.Get(l.ck, q)
			if err != nil {
				return 0, err
			}
			return meta.LastIndex, nil
		})
		if err != nil {
			return false, err
		}
		if out != retry && (p == nil || p.Session == "") {
			return first, nil
		}
	}
}

func (l *locker) acquired(h *hold, p *api.KVPair) (<-chan struct{}, error) {
	if p == nil {
		l.abandon(h)
		return nil, fmt.Errorf("consul: lock %q: transaction returned no entry", l.key)
	}
	h.token = p.ModifyIndex
	if err := h.spawn(func() { h.monitor(p.ModifyIndex) }); err != nil {
		l.abandon(h)
		return nil, fmt.Errorf("consul: lock %q: %w", l.key, err)
	}
	l.s.mu.Lock()
	closed := l.s.closed.Load()
	if !closed {
		l.s.holds[h] = struct{}{}
	}
	l.s.mu.Unlock()
	if closed {
		l.abandon(h)
		return nil, fmt.Errorf("consul: lock %q: %w", l.key, kv.ErrClosed)
	}
	l.held.Store(h)
	return h.lost, nil
}

// abandon gives up a hold that was never handed out: stop its goroutines
// and destroy its session (which deletes the key if it got it).
func (l *locker) abandon(h *hold) {
	h.stop()
	if !l.s.killed.Load() {
		ctx, cancel := context.WithTimeout(outlivesClose(context.Background()), l.s.cfg.CloseTimeout)
		defer cancel()
		_ = l.s.destroySession(ctx, h.session)
	}
	h.markLost()
}

// drop forgets a lost hold, after cleaning up what is left of it.
func (l *locker) drop(h *hold) {
	l.held.CompareAndSwap(h, nil)
	l.s.mu.Lock()
	delete(l.s.holds, h)
	l.s.mu.Unlock()
	l.abandon(h)
}

// Unlock ends the hold and releases the lock: the lock key is deleted if
// this session still holds it, then the session is destroyed. The hold ends
// here whatever happens next: renewal stops, Token drops to 0 and the lost
// channel closes before the release is sent. The release runs in the
// background, bounded by Config.CloseTimeout and not by ctx, so a caller
// whose ctx has ended still frees the lock at once rather than a TTL
// later; Unlock waits for it until ctx ends. Unlocking what is not held
// returns nil.
func (l *locker) Unlock(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.held.Swap(nil)
	if h == nil {
		return nil
	}
	l.s.mu.Lock()
	_, mine := l.s.holds[h]
	delete(l.s.holds, h)
	l.s.mu.Unlock()
	if !mine {
		return nil // Close took it and released it
	}
	h.stop()
	if h.isLost.Load() {
		l.abandon(h)
		return nil
	}
	h.markLost()
	res := make(chan error, 1)
	release := func() {
		rctx, cancel := context.WithTimeout(outlivesClose(context.WithoutCancel(ctx)), l.s.cfg.CloseTimeout)
		defer cancel()
		res <- h.release(rctx)
	}
	if l.s.spawn(release) != nil {
		release() // Close has begun and waits for no one: release here
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		select {
		case err := <-res:
			return err
		default:
			return fmt.Errorf("consul: unlock %q: %w (the release goes on in the background; the lock is free within its TTL at worst)", l.key, ctx.Err())
		}
	}
}

// Token is the fencing token of the current hold, 0 when not held.
func (l *locker) Token() uint64 {
	if h := l.current(); h != nil {
		return h.token
	}
	return 0
}

func (l *locker) current() *hold {
	h := l.held.Load()
	if h == nil || h.isLost.Load() {
		return nil
	}
	return h
}

// GuardedPut writes key in one transaction with a check-session on the lock
// key: the server applies it only while this session holds the lock.
func (l *locker) GuardedPut(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	ctx, done := kv.BoundRequest(ctx, l.s.cfg.RequestTimeout)
	defer done()
	k, err := l.s.checkWrite(ctx, "guarded put", key, value, opts)
	if err != nil {
		return err
	}
	h := l.current()
	if h == nil {
		return fmt.Errorf("consul: guarded put %q: %w", k, kv.ErrNotLocked)
	}
	ck := l.s.consulKey(k)
	if !fitsTxn(ck, value) {
		return tooLargeForTxn("guarded put", k, value)
	}
	_, err = l.s.write(ctx, "guarded put", k, ck, value, opts, api.TxnOps{h.checkOp()}, false)
	return h.guardErr("guarded put", k, err)
}

// GuardedDelete deletes key in one transaction with a check-session on the
// lock key.
func (l *locker) GuardedDelete(ctx context.Context, key string) error {
	ctx, done := kv.BoundRequest(ctx, l.s.cfg.RequestTimeout)
	defer done()
	k, err := l.s.checkKey(ctx, "guarded delete", key)
	if err != nil {
		return err
	}
	h := l.current()
	if h == nil {
		return fmt.Errorf("consul: guarded delete %q: %w", k, kv.ErrNotLocked)
	}
	ck := l.s.consulKey(k)
	l.s.kaKeys.writes.RLock()
	defer l.s.kaKeys.writes.RUnlock()
	_, err = l.s.txn(ctx, "guarded delete", k, api.TxnOps{h.checkOp(), kvOp(api.KVGet, ck), kvOp(api.KVDelete, ck)})
	if err == nil || errors.Is(err, kv.ErrOutcomeUnknown) {
		l.s.kaKeys.forget(ck)
	}
	var f *txnFailure
	if errors.As(err, &f) && f.OpIndex == 1 {
		return fmt.Errorf("consul: guarded delete %q: %w", k, kv.ErrKeyNotFound)
	}
	return h.guardErr("guarded delete", k, err)
}

func (h *hold) checkOp() *api.TxnOp {
	op := kvOp(api.KVCheckSession, h.l.ck)
	op.KV.Session = h.session
	return op
}

// guardErr maps a guarded write's failure: the check-session (operation 0)
// failing means the lock has passed on, which also ends the hold.
func (h *hold) guardErr(op, k string, err error) error {
	var f *txnFailure
	if errors.As(err, &f) {
		if f.OpIndex == 0 {
			h.markLost()
			return fmt.Errorf("consul: %s %q: %w", op, k, kv.ErrLockLost)
		}
		return fmt.Errorf("consul: %s %q: %w", op, k, f)
	}
	return err
}

func (h *hold) spawn(f func()) error {
	h.wg.Add(1)
	err := h.l.s.spawn(func() {
		defer h.wg.Done()
		f()
	})
	if err != nil {
		h.wg.Done()
	}
	return err
}

// monitor follows the lock key and declares the hold lost when the key is
// gone or held by another session, or when it cannot tell for
// Config.RetryTimeout.
func (h *hold) monitor(index uint64) {
	b := h.l.s.newBlocker(index, h.l.s.cfg.WaitTime, false)
	for {
		var p *api.KVPair
		out, err := b.next(h.ctx, "lock monitor", h.l.key, func(q *api.QueryOptions) (uint64, error) {
			var meta *api.QueryMeta
			var err error
			p, meta, err = h.l.s.kv.Get(h.l.ck, q)
			if err != nil {
				return 0, err
			}
			return meta.LastIndex, nil
		})
		if h.ctx.Err() != nil {
			return
		}
		if err != nil || (out != retry && (p == nil || p.Session != h.session)) {
			h.markLost()
			return
		}
	}
}

// markLost closes the lost channel (once) and stops the hold's goroutines
// without waiting for them (it may run on one of them).
func (h *hold) markLost() {
	h.lostOnce.Do(func() {
		h.isLost.Store(true)
		h.cancel()
		close(h.lost)
	})
}

// stop ends the hold's goroutines and waits for them. The lost channel
// stays open: the caller decides whether the hold ended.
func (h *hold) stop() {
	h.cancel()
	h.wg.Wait()
}

// release deletes the lock key if this session still holds it, destroys
// the session and closes the lost channel. The key is deleted first, in its
// own transaction, so that lock-delay (which follows an invalidated
// session) does not hold up the next owner.
func (h *hold) release(ctx context.Context) error {
	defer h.markLost()
	_, err := h.l.s.txn(ctx, "unlock", h.l.key, api.TxnOps{h.checkOp(), kvOp(api.KVDelete, h.l.ck)})
	var f *txnFailure
	switch {
	case errors.Is(err, kv.ErrPermissionDenied) || errors.Is(err, kv.ErrAuthFailed):
		// The key may not be deleted any more; destroying the session
		// still frees the lock (its behaviour is delete) if the token may
		// do that.
		return errors.Join(err, h.l.s.destroySession(ctx, h.session))
	case err != nil && !errors.As(err, &f):
		return err
	}
	return h.l.s.destroySession(ctx, h.session)
}
