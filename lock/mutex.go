package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/regentkv/regent/kv"
)

// Mutex is a distributed mutex on one key of a kv.Store.
type Mutex struct {
	key    string
	locker kv.Locker
	ttl    time.Duration // as asked; 0: the driver's default

	mu   sync.Mutex
	lost <-chan struct{} // of the current hold; nil when never locked
}

// Option tunes a Mutex.
type Option interface{ apply(*kv.LockOptions) }

type optionFunc func(*kv.LockOptions)

func (f optionFunc) apply(o *kv.LockOptions) { f(o) }

// WithTTL bounds how long the lock outlives a holder that dies without
// unlocking: the failover time after a crash. Zero keeps the driver's
// default.
func WithTTL(ttl time.Duration) Option {
	return optionFunc(func(o *kv.LockOptions) { o.TTL = ttl })
}

// WithRenewDeadline sets how long the holder may go without the server
// confirming its hold before Lost() closes. It must be below the TTL.
func WithRenewDeadline(d time.Duration) Option {
	return optionFunc(func(o *kv.LockOptions) { o.RenewDeadline = d })
}

// WithValue stores value with the hold, for example the holder's identity.
func WithValue(value []byte) Option {
	return optionFunc(func(o *kv.LockOptions) { o.Value = value })
}

// New returns a Mutex on key. It acquires nothing.
func New(ctx context.Context, store kv.Store, key string, opts ...Option) (*Mutex, error) {
	if store == nil {
		return nil, errors.New("lock: nil store")
	}
	var lo kv.LockOptions
	for _, o := range opts {
		o.apply(&lo)
	}
	if err := kv.CheckLockOptions(lo); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, err
	}
	l, err := store.NewLock(ctx, k, &lo)
	if err != nil {
		return nil, err
	}
	return &Mutex{key: k, locker: l, ttl: lo.TTL}, nil
}

// DefaultReleaseTimeout bounds the Unlock that Do makes when the lock uses
// the driver's default TTL (no WithTTL); with WithTTL, the TTL bounds it.
const DefaultReleaseTimeout = 10 * time.Second

// releaseTimeout is how long a release may wait for the server: past the
// TTL the lock expires on the server by itself, so waiting longer only
// blocks the caller (an etcd client waits for a connection forever).
func (m *Mutex) releaseTimeout() time.Duration {
	if m.ttl > 0 {
		return m.ttl
	}
	return DefaultReleaseTimeout
}

// Key returns the normalised key of the lock.
func (m *Mutex) Key() string { return m.key }

// Lock blocks until the lock is held or ctx ends (then it returns ctx.Err()
// and leaves nothing behind on the server).
func (m *Mutex) Lock(ctx context.Context) error {
	return m.acquire(ctx, m.locker.Lock)
}

// TryLock takes the lock if it is free, or returns kv.ErrLockHeld.
func (m *Mutex) TryLock(ctx context.Context) error {
	return m.acquire(ctx, m.locker.TryLock)
}

func (m *Mutex) acquire(ctx context.Context, how func(context.Context) (<-chan struct{}, error)) error {
	lost, err := how(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.lost = lost
	m.mu.Unlock()
	return nil
}

// Unlock releases the lock. It is idempotent: unlocking a lock that is not
// held returns nil.
func (m *Mutex) Unlock(ctx context.Context) error { return m.locker.Unlock(ctx) }

// Lost returns a channel that is closed when the current hold ends (by
// Unlock or by loss). Before the first Lock it returns a closed channel:
// nothing is held.
func (m *Mutex) Lost() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lost == nil {
		return closedChan
	}
	return m.lost
}

// IsHeld reports whether this Mutex believes it holds the lock. The answer
// can be stale the moment it is returned; use guarded writes for anything
// that must not happen after a loss.
func (m *Mutex) IsHeld() bool {
	select {
	case <-m.Lost():
		return false
	default:
		return true
	}
}

// Token returns the fencing token of the current hold, or 0 when the lock
// is not held. Tokens strictly increase across successive holders of the
// key; hand them to systems that can reject writes from older holders.
func (m *Mutex) Token() uint64 { return m.locker.Token() }

// GuardedPut writes key only while this Mutex holds the lock, checked
// atomically by the server: kv.ErrNotLocked if it is not held here,
// kv.ErrLockLost if the server says the hold has passed on.
func (m *Mutex) GuardedPut(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	return m.locker.GuardedPut(ctx, key, value, opts)
}

// GuardedDelete deletes key only while this Mutex holds the lock.
func (m *Mutex) GuardedDelete(ctx context.Context, key string) error {
	return m.locker.GuardedDelete(ctx, key)
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()
