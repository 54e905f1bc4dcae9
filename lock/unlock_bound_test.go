package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/lock"
)

// stuckStore is a kv.Store whose server stopped answering while a lock was
// held: Unlock waits for its ctx (as an etcd Revoke on a lost connection
// does: the client waits for a connection) or for the test to end.
type stuckStore struct {
	kv.Store // only NewLock is used
	gone     chan struct{}
}

func (s stuckStore) NewLock(context.Context, string, *kv.LockOptions) (kv.Locker, error) {
	return stuckLocker{gone: s.gone}, nil
}

type stuckLocker struct {
	kv.Locker // only Lock, Token and Unlock are used
	gone      chan struct{}
}

func (l stuckLocker) Lock(context.Context) (<-chan struct{}, error) { return make(chan struct{}), nil }
func (l stuckLocker) Token() uint64                                 { return 1 }
func (l stuckLocker) Unlock(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.gone:
		return errors.New("test over")
	}
}

// TestDoReturnsWhenUnlockCannotReachTheServer: Do releases with a ctx that
// outlives the caller's, but not forever: once the TTL has passed the lock
// has expired on the server anyway, so an unreachable server must not keep
// Do from returning.
func TestDoReturnsWhenUnlockCannotReachTheServer(t *testing.T) {
	gone := make(chan struct{})
	defer close(gone)
	const ttl = 300 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		done <- lock.Do(context.Background(), stuckStore{gone: gone}, "k",
			func(context.Context, uint64) error { return nil }, lock.WithTTL(ttl))
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do = %v, want the unlock's deadline error", err)
		}
	case <-time.After(10 * ttl):
		t.Fatalf("Do still blocked in Unlock %v after fn returned; the TTL is %v", 10*ttl, ttl)
	}
}
