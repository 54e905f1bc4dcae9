package etcd

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
)

// TestLockCompletingDuringClose: a Lock that completes while Close runs
// (after Close has taken the list of locks to release, before it stops the
// Store's goroutines) must not return a hold that Close never releases:
// its lost channel would never close and its lease would outlive Close.
func TestLockCompletingDuringClose(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := New(ctx, Config{Endpoints: eps, Root: "closerace"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	l, err := s.NewLock(ctx, "lk", nil)
	if err != nil {
		t.Fatal(err)
	}

	lockAt, closeAt := make(chan struct{}), make(chan struct{})
	lockGo, closeGo := make(chan struct{}), make(chan struct{})
	s.testHook = func(point string) {
		switch point {
		case "lock: acquired":
			close(lockAt)
			<-lockGo
		case "close: locks taken":
			close(closeAt)
			<-closeGo
		}
	}

	type result struct {
		lost <-chan struct{}
		err  error
	}
	locked := make(chan result, 1)
	go func() {
		lost, err := l.Lock(ctx)
		locked <- result{lost, err}
	}()
	<-lockAt // the lock is ours on the server; not yet recorded
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	<-closeAt // Close has taken its list of locks: without this one
	close(lockGo)
	r := <-locked
	close(closeGo)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if r.err != nil {
		if !errors.Is(r.err, kv.ErrClosed) {
			t.Fatalf("Lock racing Close: %v, want success or ErrClosed", r.err)
		}
		return
	}
	select {
	case <-r.lost:
	case <-time.After(5 * time.Second):
		t.Fatal("Lock succeeded while the Store closed, and its lost channel is still open 5s after Close returned")
	}
}
