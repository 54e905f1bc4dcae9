package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/regentkv/regent/kv"
)

// Do takes the lock on key, runs fn while it is held and releases it.
//
// fn's ctx is cancelled, with cause kv.ErrLockLost, as soon as the hold is
// lost; fn should return promptly then. Do returns fn's error; if the hold
// was lost while fn ran, the error also matches kv.ErrLockLost so that the
// caller can tell a loss from fn's own failure. The release after fn waits
// for the server at most the TTL (DefaultReleaseTimeout without WithTTL);
// its failure is returned when fn succeeded. The token passed to fn is
// the fencing token of this hold.
func Do(ctx context.Context, store kv.Store, key string, fn func(ctx context.Context, token uint64) error, opts ...Option) (err error) {
	m, err := New(ctx, store, key, opts...)
	if err != nil {
		return err
	}
	if err := m.Lock(ctx); err != nil {
		return err
	}
	defer func() {
		// Release even when ctx has ended: the caller's cancellation must
		// not leave the lock held until its TTL runs out. But not for
		// longer than the TTL: an unreachable server must not keep Do from
		// returning, and the lock expires there by itself.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.releaseTimeout())
		defer cancel()
		uerr := m.Unlock(uctx)
		if err == nil && uerr != nil && !errors.Is(uerr, kv.ErrClosed) {
			err = fmt.Errorf("lock: unlock %s: %w", m.Key(), uerr)
		}
	}()
	return runHeld(ctx, m.Lost(), m.Token(), fn)
}

// runHeld runs fn with a ctx that ends when lost closes.
func runHeld(ctx context.Context, lost <-chan struct{}, token uint64, fn func(context.Context, uint64) error) error {
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-lost:
			cancel(kv.ErrLockLost)
		case <-done:
		}
	}()
	err := fn(fctx, token)
	close(done)
	<-watcherDone
	if errors.Is(context.Cause(fctx), kv.ErrLockLost) && !errors.Is(err, kv.ErrLockLost) {
		if err == nil {
			return kv.ErrLockLost
		}
		return fmt.Errorf("%w (the lock was lost while running: %w)", err, kv.ErrLockLost)
	}
	return err
}
