package memory

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/clock"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// lockState is a held lock. It lives in Backend.locks, apart from the user
// keys, so List, WatchTree, DeleteTree and Events never see it.
type lockState struct {
	key    string
	holder *locker
	token  uint64 // the backend revision at which it was taken
	value  []byte
	ttl    time.Duration
	renew  time.Duration // the holder gives up this long after a kill
	timer  clock.Timer   // server side: release, armed on kill
	renewT clock.Timer   // holder side: close lost, armed on kill
	lost   chan struct{}
	gone   bool // lost is closed: the holder no longer believes it holds
}

// locker implements kv.Locker. Its state is guarded by the backend mutex.
type locker struct {
	s     *Store
	key   string
	value []byte
	ttl   time.Duration
	renew time.Duration
	cur   *lockState // the last hold; current only while in b.locks
}

// NewLock implements kv.Store. A zero LockOptions.TTL means DefaultLockTTL:
// how long the lock outlives a holder that was killed. The fencing token is
// the backend revision at which the lock was taken.
func (s *Store) NewLock(ctx context.Context, key string, opts *kv.LockOptions) (kv.Locker, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, fmt.Errorf("memory: new lock: %w", err)
	}
	lk, err := driver.ResolveLock(opts, driver.LockPolicy{
		DefaultTTL: s.b.opts.lockTTL,
		CheckTTL:   func(ttl time.Duration) error { return kv.CheckWriteOptions(&kv.WriteOptions{TTL: ttl}, MinTTL) },
		// No margin: expiry is exact, in this process.
	})
	if err != nil {
		return nil, fmt.Errorf("memory: new lock %q: %w", k, err)
	}
	l := &locker{s: s, key: k, ttl: lk.TTL, renew: lk.Deadline(lk.TTL), value: lk.Value}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	s.b.mu.Unlock()
	return l, nil
}

// heldLocked reports whether l believes it holds the lock: the backend
// still has its hold, and l has not given it up after being cut off.
func (l *locker) heldLocked() bool {
	return l.cur != nil && l.s.b.locks[l.key] == l.cur && !l.cur.gone
}

// Lock implements kv.Locker. Waiters leave no trace in the backend, so a
// cancelled Lock has nothing to clean up.
func (l *locker) Lock(ctx context.Context) (<-chan struct{}, error) {
	for {
		lost, wake, err := l.try(ctx)
		if err != nil || lost != nil {
			return lost, err
		}
		select {
		case <-wake:
		case <-l.s.done: // the next try reports why
		case <-ctx.Done():
			return nil, fmt.Errorf("memory: lock %q: %w", l.key, ctx.Err())
		}
	}
}

// TryLock implements kv.Locker.
func (l *locker) TryLock(ctx context.Context) (<-chan struct{}, error) {
	lost, _, err := l.try(ctx)
	if err == nil && lost == nil {
		err = fmt.Errorf("memory: lock %q: %w", l.key, kv.ErrLockHeld)
	}
	return lost, err
}

// try takes the lock if it is free. When another owner holds it, it returns
// the channel that the next change closes.
func (l *locker) try(ctx context.Context) (<-chan struct{}, <-chan struct{}, error) {
	if err := l.s.lock(ctx); err != nil {
		return nil, nil, err
	}
	b := l.s.b
	defer b.mu.Unlock()
	if l.heldLocked() {
		return nil, nil, fmt.Errorf("memory: lock %q: already held by this locker: %w", l.key, kv.ErrLockHeld)
	}
	if b.locks[l.key] != nil {
		return nil, b.changed, nil
	}
	b.rev++
	st := &lockState{key: l.key, holder: l, token: b.rev, value: l.value, ttl: l.ttl, renew: l.renew, lost: make(chan struct{})}
	b.locks[l.key] = st
	l.cur = st
	b.broadcastLocked()
	return st.lost, nil, nil
}

// Unlock implements kv.Locker. The backend is in-process, so the release
// is immediate whatever ctx says; a killed client cannot reach it, so its
// hold ends here and the backend frees the lock when its TTL runs out.
func (l *locker) Unlock(context.Context) error {
	b := l.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !l.heldLocked() {
		l.cur = nil
		return nil
	}
	if l.s.killed {
		l.cur.giveUpLocked()
		l.cur = nil
		return fmt.Errorf("memory: unlock %q: client killed, the lock expires with its TTL: %w", l.key, kv.ErrNotReachable)
	}
	b.releaseLocked(l.cur)
	l.cur = nil
	return nil
}

// Token implements kv.Locker.
func (l *locker) Token() uint64 {
	b := l.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !l.heldLocked() {
		return 0
	}
	return l.cur.token
}

// guard takes the backend mutex if l may write under its lock.
func (l *locker) guard(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	b := l.s.b
	b.mu.Lock()
	var err error
	switch {
	case l.s.closed:
		err = fmt.Errorf("memory: %s: %w", op, kv.ErrClosed)
	case l.cur == nil:
		err = fmt.Errorf("memory: %s: lock %q: %w", op, l.key, kv.ErrNotLocked)
	case l.s.killed:
		err = fmt.Errorf("memory: %s: lock %q: client killed: %w: %w", op, l.key, kv.ErrLockLost, kv.ErrNotReachable)
	case b.locks[l.key] != l.cur || l.cur.gone:
		err = fmt.Errorf("memory: %s: lock %q: %w", op, l.key, kv.ErrLockLost)
	}
	if err != nil {
		b.mu.Unlock()
	}
	return err
}

// GuardedPut implements kv.Locker.
func (l *locker) GuardedPut(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return fmt.Errorf("memory: guarded put: %w", err)
	}
	if err := checkWrite(value, opts); err != nil {
		return err
	}
	if err := l.guard(ctx, "guarded put"); err != nil {
		return err
	}
	defer l.s.b.mu.Unlock()
	l.s.b.putLocked(k, value, opts, l.s)
	return nil
}

// GuardedDelete implements kv.Locker.
func (l *locker) GuardedDelete(ctx context.Context, key string) error {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return fmt.Errorf("memory: guarded delete: %w", err)
	}
	if err := l.guard(ctx, "guarded delete"); err != nil {
		return err
	}
	defer l.s.b.mu.Unlock()
	if l.s.b.data[k] == nil {
		return fmt.Errorf("memory: guarded delete %q: %w", k, kv.ErrKeyNotFound)
	}
	l.s.b.deleteLocked(k)
	return nil
}

// releaseLocked frees st and closes its lost channel.
func (b *Backend) releaseLocked(st *lockState) {
	if b.locks[st.key] == st {
		delete(b.locks, st.key)
	}
	if st.timer != nil {
		st.timer.Stop()
	}
	if st.renewT != nil {
		st.renewT.Stop()
	}
	st.giveUpLocked()
	b.broadcastLocked()
}

// giveUpLocked closes the holder's lost channel, once.
func (st *lockState) giveUpLocked() {
	if !st.gone {
		st.gone = true
		close(st.lost)
	}
}

// armLockLocked handles the kill of st's holder, as a cut-off client and
// its server would: the holder gives up (closes lost) RenewDeadline from
// now, the server releases the lock TTL from now, after it.
func (b *Backend) armLockLocked(st *lockState) {
	if b.closed {
		return
	}
	st.renewT = b.opts.clock.AfterFunc(st.renew, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		st.giveUpLocked()
	})
	st.timer = b.opts.clock.AfterFunc(st.ttl, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.closed || b.locks[st.key] != st {
			return
		}
		b.opts.logger.Debug("memory: lock expired", zap.String("key", st.key), zap.Uint64("token", st.token))
		b.releaseLocked(st)
	})
}
