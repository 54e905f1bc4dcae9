package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// NewLock returns a Locker for key. Its contenders live at
// <root>/__regent/locks/<key>/__regent/<lease id>, out of reach of every user
// prefix. The TTL (LockOptions.TTL, else the Store's LockTTL) is rounded up
// to whole seconds and must be at least the Store's MinTTL.
func (s *Store) NewLock(ctx context.Context, key string, opts *kv.LockOptions) (kv.Locker, error) {
	k, lk, err := driver.NewLockArgs(ctx, key, opts, driver.LockPolicy{
		DefaultTTL: s.lockTTL,
		CheckTTL:   func(ttl time.Duration) error { return s.checkTTL(&kv.WriteOptions{TTL: ttl}) },
		Margin:     driver.LostMargin, // the earliest expiry is known exactly: the last answered keep-alive's send time plus the TTL
	}, s.check())
	if err != nil {
		return nil, fmt.Errorf("etcd: new lock: %w", err)
	}
	return &locker{
		s:     s,
		key:   k,
		pfx:   s.internal + "/locks/" + k + "/" + kv.ReservedSegmentPrefix + "/",
		value: string(lk.Value),
		ttl:   ttlSeconds(lk.TTL),
		lk:    lk,
		sem:   make(chan struct{}, 1),
	}, nil
}

// keepAliveRetry is how soon a failed keep-alive is retried.
const keepAliveRetry = 200 * time.Millisecond

type locker struct {
	s     *Store
	key   string
	pfx   string // etcd prefix of this lock's contender keys
	value string
	ttl   int64       // seconds
	lk    driver.Lock // the options resolved: deadline and renewal interval

	sem  chan struct{} // one Lock/TryLock attempt at a time
	mu   sync.Mutex
	hold *hold // nil when not held
}

// hold is one tenure of the lock.
type hold struct {
	lease   clientv3.LeaseID
	key     string // the contender key
	rev     int64  // its CreateRevision: the fencing token
	lost    chan struct{}
	once    sync.Once
	kactx   context.Context    // ends when we let go of the lease
	stopKA  context.CancelFunc // ends the keep-alive and the monitor
	monitor chan struct{}      // closed when the monitor goroutine exits
}

func (h *hold) closeLost() { h.once.Do(func() { close(h.lost) }) }

// Lock waits for the lock, watching only the contender just ahead (no herd
// when the lock changes hands).
func (l *locker) Lock(ctx context.Context) (<-chan struct{}, error) { return l.lock(ctx, true) }

// TryLock is Lock without waiting.
func (l *locker) TryLock(ctx context.Context) (<-chan struct{}, error) {
	ctx, done := kv.BoundRequest(ctx, l.s.reqTO) // one attempt: bounded, unlike Lock
	defer done()
	return l.lock(ctx, false)
}

func (l *locker) lock(ctx context.Context, wait bool) (<-chan struct{}, error) {
	select {
	case l.sem <- struct{}{}:
		defer func() { <-l.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := l.s.checkOpen(ctx, "lock"); err != nil {
		return nil, err
	}
	l.mu.Lock()
	held := l.hold != nil
	l.mu.Unlock()
	if held {
		return nil, fmt.Errorf("etcd: lock %q: already held by this Locker: %w", l.key, kv.ErrLockHeld)
	}
	h, err := l.acquire(ctx, wait)
	if err != nil {
		return nil, err
	}
	return h.lost, nil
}

// acquire takes the lock. A waiting Lock rides out trouble with the
// cluster (a member or its leader lost, an election, a lease lost while
// queued) until ctx ends, queueing again with a new lease each time: the
// attempt that failed has revoked its own, or its key expires with it.
// TryLock makes one attempt.
func (l *locker) acquire(ctx context.Context, wait bool) (*hold, error) {
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(20*time.Millisecond),
		backoff.WithMaxInterval(time.Second), backoff.WithMaxElapsedTime(0))
	for {
		h, err := l.attempt(ctx, wait)
		retryable := errors.Is(err, kv.ErrNotReachable) || errors.Is(err, kv.ErrLockLost)
		if err == nil || !wait || ctx.Err() != nil || l.s.isClosed() || !retryable {
			return h, err
		}
		l.s.log.Debug("etcd: lock attempt failed; queueing again", zap.String("lock", l.key), zap.Error(err))
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("etcd: lock %q: %w (last error: %s)", l.key, ctx.Err(), err.Error())
		}
	}
}

// grantAttempt bounds one Grant of a lock's lease: a proposal caught in a
// leader's loss waits the server's request timeout (7 s with etcd's
// defaults) before it fails, longer than the lease's renew window, and by
// then another member may have granted it at once.
func (l *locker) grantAttempt(ttl time.Duration) time.Duration {
	return max(l.lk.RenewEvery(ttl), 200*time.Millisecond)
}

// grant grants the lock's lease, trying again while a Grant takes longer
// than grantAttempt: a lease granted that late would be past much of its
// renew window before its first renewal (the hold was declared lost right
// after it was taken). It returns the lease and the time its TTL counts
// from at the earliest (the send time of the Grant that was answered).
// Leases of abandoned attempts are revoked in the background, or expire.
func (l *locker) grant(ctx context.Context) (*clientv3.LeaseGrantResponse, time.Time, error) {
	s := l.s
	ttl := time.Duration(l.ttl) * time.Second
	for {
		sent := time.Now()
		actx, cancel := context.WithTimeout(ctx, l.grantAttempt(ttl))
		g, err := s.c.Grant(actx, l.ttl)
		cancel()
		switch {
		case err == nil && time.Since(sent) < l.grantAttempt(ttl):
			return g, sent, nil
		case err == nil:
			id := g.ID
			s.goroutines.Go(func() {
				rctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
				defer cancel()
				_, _ = s.c.Revoke(rctx, id)
			})
		case ctx.Err() != nil || s.isClosed():
			return nil, sent, s.mapErr(ctx, "lock", l.key, err)
		case actx.Err() == nil && !errors.Is(s.mapErr(ctx, "lock", l.key, err), kv.ErrNotReachable):
			return nil, sent, s.mapErr(ctx, "lock", l.key, err)
		}
		s.log.Debug("etcd: lock lease grant too slow or failed; granting again", zap.String("lock", l.key), zap.Error(err))
		if err != nil {
			// A Grant that failed at once (no connection) must not spin.
			t := time.NewTimer(grantRetry)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, sent, s.mapErr(ctx, "lock", l.key, ctx.Err())
			}
		}
	}
}

// grantRetry is how soon a failed Grant is tried again.
const grantRetry = 50 * time.Millisecond

// attempt is one try at the lock: a lease, a contender key, the wait.
func (l *locker) attempt(ctx context.Context, wait bool) (*hold, error) {
	s := l.s
	g, granted, err := l.grant(ctx)
	if err != nil {
		return nil, err
	}
	kactx, stopKA := context.WithCancel(s.ctx)
	h := &hold{
		lease:   g.ID,
		key:     fmt.Sprintf("%s%016x", l.pfx, int64(g.ID)),
		lost:    make(chan struct{}),
		kactx:   kactx,
		stopKA:  stopKA,
		monitor: make(chan struct{}),
	}
	ttl := time.Duration(g.TTL) * time.Second
	if !s.goroutines.Go(func() { l.keepAlive(h, granted, ttl) }) {
		stopKA()
		return nil, s.checkOpen(context.Background(), "lock")
	}

	// Enter the queue and learn the current owner in one transaction.
	resp, err := s.c.Txn(ctx).Then(
		clientv3.OpPut(h.key, l.value, clientv3.WithLease(h.lease)),
		clientv3.OpGet(l.pfx, clientv3.WithFirstCreate()...),
	).Commit()
	if err != nil {
		lost := errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseNotFound)
		select {
		case <-h.lost:
			lost = true
		default:
		}
		l.abandon(h)
		if lost {
			// The lease ran out while the request waited (an outage longer
			// than the TTL): a waiting Lock queues again with a new one.
			return nil, fmt.Errorf("etcd: lock %q: lease lost before the contender key was written: %w: %w", l.key, kv.ErrLockLost, err)
		}
		return nil, s.mapErr(ctx, "lock", l.key, err)
	}
	h.rev = resp.Header.Revision
	owner := resp.Responses[1].GetResponseRange().Kvs
	if len(owner) == 0 || owner[0].CreateRevision != h.rev {
		if !wait {
			l.abandon(h)
			return nil, fmt.Errorf("etcd: try lock %q: %w", l.key, kv.ErrLockHeld)
		}
		if err := l.waitTurn(ctx, h); err != nil {
			l.abandon(h)
			return nil, err
		}
	}

	if s.testHook != nil {
		s.testHook("lock: acquired")
	}
	// Recorded as held and registered for Close in one step under s.mu: a
	// Close that has already taken its list of locks would never release a
	// hold registered after it (and nothing would close its lost channel).
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.abandon(h)
		return nil, fmt.Errorf("etcd: lock %q: %w", l.key, kv.ErrClosed)
	}
	l.mu.Lock()
	l.hold = h
	l.mu.Unlock()
	s.locks[l] = struct{}{}
	s.mu.Unlock()
	select {
	case <-h.lost: // lost between the last check and now
		l.releaseSoon()
		return nil, fmt.Errorf("etcd: lock %q: %w", l.key, kv.ErrLockLost)
	default:
	}
	return h, nil
}

// waitTurn blocks until every contender created before h is gone.
func (l *locker) waitTurn(ctx context.Context, h *hold) error {
	s := l.s
	wctx, stop := s.watchContext(ctx)
	defer stop()
	for {
		opts := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(h.rev-1))
		resp, err := s.c.Get(wctx, l.pfx, opts...)
		if err != nil {
			return l.waitErr(ctx, h, err)
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		pred := string(resp.Kvs[0].Key)
		ws := s.openWatch(pred, clientv3.WithRev(resp.Header.Revision+1))
		err = l.waitGone(wctx, ws, h)
		ws.close()
		if err != nil {
			return err
		}
		if wctx.Err() != nil {
			return l.waitErr(ctx, h, wctx.Err())
		}
	}
}

// waitGone returns nil once the watched predecessor is deleted, or its
// watch ended (the caller re-checks), or ctx ended (the caller looks).
func (l *locker) waitGone(ctx context.Context, ws *watchStream, h *hold) error {
	for {
		select {
		case r, ok := <-ws.w:
			if !ok || r.Err() != nil {
				return nil
			}
			if r.Created {
				ws.created = true
			}
			for _, ev := range r.Events {
				if ev.Type == mvccpb.DELETE {
					return nil
				}
			}
		case <-ctx.Done():
			return nil
		case <-h.lost:
			return fmt.Errorf("etcd: lock %q: lease lost while waiting: %w", l.key, kv.ErrLockLost)
		}
	}
}

func (l *locker) waitErr(ctx context.Context, h *hold, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if l.s.ctx.Err() != nil {
		return fmt.Errorf("etcd: lock %q: %w", l.key, kv.ErrClosed)
	}
	return l.s.mapErr(ctx, "lock", l.key, err)
}

// abandon undoes a failed or cancelled attempt: the lease is revoked (which
// deletes the contender key) with a fresh deadline, since ctx may be over.
func (l *locker) abandon(h *hold) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if _, err := l.s.c.Revoke(ctx, h.lease); err != nil {
		l.s.log.Debug("etcd: revoking an abandoned lock lease failed; it expires within its TTL",
			zap.String("lock", l.key), zap.Error(err))
	}
	h.stopKA()
	<-h.monitor
	h.closeLost()
}

// keepAlive renews the lease every TTL/3 with single keep-alive requests
// (rather than the client's stream, whose answers do not say when the
// renewal happened), and closes h.lost when the lease is gone (revoked,
// expired) or when it could not be renewed until driver.LostMargin before the
// server may expire it: the holder learns of the loss before the server can
// hand the lock to someone else. It exits when h.kactx ends.
func (l *locker) keepAlive(h *hold, granted time.Time, ttl time.Duration) {
	defer close(h.monitor)
	safeUntil := granted.Add(l.lk.Deadline(ttl)) // the lease is ours at least until then
	// The first renewal an interval after the grant was sent, not after
	// this goroutine started.
	timer := time.NewTimer(max(0, l.lk.RenewEvery(ttl)-time.Since(granted)))
	defer timer.Stop()
	for {
		select {
		case <-h.kactx.Done():
			return
		case <-timer.C:
		}
		sent := time.Now()
		if !sent.Before(safeUntil) {
			l.lost(h, "lease not renewed in time")
			return
		}
		ctx, cancel := context.WithDeadline(h.kactx, safeUntil)
		resp, err := l.s.c.KeepAliveOnce(ctx, h.lease)
		cancel()
		switch {
		case err == nil:
			renewed := time.Duration(resp.TTL) * time.Second
			safeUntil = sent.Add(l.lk.Deadline(renewed))
			timer.Reset(l.lk.RenewEvery(renewed))
		case h.kactx.Err() != nil:
			return
		case errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseNotFound):
			l.lost(h, "lease expired or revoked on the server")
			return
		default:
			l.s.log.Debug("etcd: lock keep-alive failed; retrying", zap.String("lock", l.key), zap.Error(err))
			timer.Reset(max(0, min(keepAliveRetry, time.Until(safeUntil))))
		}
	}
}

// lost records that h is over, unless it ended because we let go of it
// (then whoever let go cleans up). The keep-alive stops: a lease we gave up
// on must not be renewed behind our back if the server comes back.
func (l *locker) lost(h *hold, why string) {
	if h.kactx.Err() != nil {
		return
	}
	h.stopKA()
	l.s.log.Warn("etcd: lock lost", zap.String("lock", l.key), zap.String("why", why))
	// Not held any more before the channel says so: whoever wakes on it
	// must find Token 0 and guarded writes refused.
	l.mu.Lock()
	if l.hold == h {
		l.hold = nil
	}
	l.mu.Unlock()
	l.s.mu.Lock()
	delete(l.s.locks, l)
	l.s.mu.Unlock()
	h.closeLost()
}

// Unlock ends the hold and revokes the lock's lease, which deletes the
// contender key and hands the lock to the next one in line. The hold ends
// here whatever happens next: the keep-alive stops, Token drops to 0 and
// the lost channel closes before the revoke is sent. The revoke runs in the
// background, bounded by closeTimeout and not by ctx, so a caller whose ctx
// has ended (a deferred Unlock after a cancellation) still frees the lock
// at once rather than a TTL later; Unlock waits for it until ctx ends. If
// the server cannot be reached, the error says so and the lease expires
// within its TTL.
func (l *locker) Unlock(ctx context.Context) error {
	l.mu.Lock()
	h := l.hold
	l.hold = nil
	l.mu.Unlock()
	if h == nil {
		return nil
	}
	h.stopKA()
	<-h.monitor
	h.closeLost()
	l.s.mu.Lock()
	delete(l.s.locks, l)
	l.s.mu.Unlock()
	res := make(chan error, 1)
	revoke := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		_, err := l.s.c.Revoke(rctx, h.lease)
		res <- err
	}
	if !l.s.goroutines.Go(revoke) {
		revoke() // Close has begun and waits for no one: revoke here
	}
	var err error
	select {
	case err = <-res:
	case <-ctx.Done():
		select {
		case err = <-res:
		default:
			return fmt.Errorf("etcd: unlock %q: %w (the release goes on in the background; the lock is free within its TTL at worst)", l.key, ctx.Err())
		}
	}
	if err != nil && !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseNotFound) {
		return l.s.mapErr(context.WithoutCancel(ctx), "unlock", l.key, err)
	}
	return nil
}

// release is Unlock for Close.
func (l *locker) release(ctx context.Context) { _ = l.Unlock(ctx) }

// releaseSoon is release with its own deadline.
func (l *locker) releaseSoon() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	l.release(ctx)
}

// Token is the CreateRevision of the contender key: store-wide revisions
// only grow, and a later holder's key was created after ours.
func (l *locker) Token() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hold == nil {
		return 0
	}
	return uint64(l.hold.rev)
}

func (l *locker) current(ctx context.Context, op string) (*hold, error) {
	if err := l.s.checkOpen(ctx, op); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hold == nil {
		return nil, fmt.Errorf("etcd: %s under lock %q: %w", op, l.key, kv.ErrNotLocked)
	}
	return l.hold, nil
}

// GuardedPut is a transaction that writes only while the contender key
// still exists with our CreateRevision.
func (l *locker) GuardedPut(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	s := l.s
	k, err := s.checkWriteArgs("guarded put", key, value, opts)
	if err != nil {
		return err
	}
	ctx, done := kv.BoundRequest(ctx, l.s.reqTO)
	defer done()
	h, err := l.current(ctx, "guarded put")
	if err != nil {
		return err
	}
	ek := s.etcdKey(k)
	wctx, sent := s.trackSend(ctx)
	err = s.withLease(ctx, k, value, opts, &guard{key: h.key, rev: h.rev}, func(lease []clientv3.OpOption) error {
		resp, err := s.c.Txn(wctx).
			If(clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)).
			Then(clientv3.OpPut(ek, string(value), lease...)).
			Commit()
		if err == nil && !resp.Succeeded {
			return errNotWritten
		}
		return err
	})
	if err == errNotWritten { //nolint:errorlint // our own sentinel, never wrapped
		return fmt.Errorf("etcd: guarded put %q under lock %q: %w", k, l.key, kv.ErrLockLost)
	}
	return s.mapWriteErr(ctx, "guarded put", k, err, sent)
}

// GuardedDelete deletes key only while the contender key still exists with
// our CreateRevision.
func (l *locker) GuardedDelete(ctx context.Context, key string) error {
	s := l.s
	k, err := normalizeKey("guarded delete", key)
	if err != nil {
		return err
	}
	ctx, done := kv.BoundRequest(ctx, l.s.reqTO)
	defer done()
	h, err := l.current(ctx, "guarded delete")
	if err != nil {
		return err
	}
	wctx, sent := s.trackSend(ctx)
	resp, err := s.c.Txn(wctx).
		If(clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)).
		Then(clientv3.OpDelete(s.etcdKey(k))).
		Commit()
	switch {
	case err != nil:
		return s.mapWriteErr(ctx, "guarded delete", k, err, sent)
	case !resp.Succeeded:
		return fmt.Errorf("etcd: guarded delete %q under lock %q: %w", k, l.key, kv.ErrLockLost)
	case resp.Responses[0].GetResponseDeleteRange().Deleted == 0:
		return fmt.Errorf("etcd: guarded delete %q: %w", k, kv.ErrKeyNotFound)
	}
	s.ka.forget(k)
	return nil
}
