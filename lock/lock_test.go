package lock_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
	"github.com/regentkv/regent/lock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewRejectsBadInput(t *testing.T) {
	s := memory.New()
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	if _, err := lock.New(ctx, s, "a//b"); !errors.Is(err, kv.ErrInvalidKey) {
		t.Errorf("bad key: %v, want ErrInvalidKey", err)
	}
	if _, err := lock.New(ctx, nil, "a"); err == nil {
		t.Error("nil store accepted")
	}
	_, err := lock.New(ctx, s, "a", lock.WithTTL(time.Second), lock.WithRenewDeadline(time.Second))
	if !errors.Is(err, kv.ErrInvalidTTL) || !strings.Contains(err.Error(), "below the TTL") {
		t.Errorf("renew deadline = TTL: %v, want an ErrInvalidTTL saying 'below the TTL'", err)
	}
	if _, err := lock.New(ctx, s, "a", lock.WithTTL(-time.Second)); !errors.Is(err, kv.ErrInvalidTTL) {
		t.Errorf("negative TTL: %v, want ErrInvalidTTL", err)
	}
	if _, err := lock.New(ctx, s, "a", lock.WithRenewDeadline(-time.Second)); !errors.Is(err, kv.ErrInvalidTTL) {
		t.Errorf("negative renew deadline: %v, want ErrInvalidTTL", err)
	}
}

func TestMutexLifecycle(t *testing.T) {
	b := memory.NewBackend()
	defer b.Close()
	s1, s2 := b.Client(), b.Client()
	defer func() { _ = s1.Close() }()
	defer func() { _ = s2.Close() }()
	ctx := context.Background()
	m1, err := lock.New(ctx, s1, "/jobs/nightly/", lock.WithValue([]byte("one")))
	if err != nil {
		t.Fatal(err)
	}
	if m1.Key() != "jobs/nightly" {
		t.Errorf("Key() = %q, want the normalised jobs/nightly", m1.Key())
	}
	if m1.IsHeld() || m1.Token() != 0 {
		t.Errorf("before Lock: IsHeld %v, Token %d; want false, 0", m1.IsHeld(), m1.Token())
	}
	if err := m1.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if !m1.IsHeld() || m1.Token() == 0 {
		t.Errorf("after Lock: IsHeld %v, Token %d; want true, >0", m1.IsHeld(), m1.Token())
	}
	m2, err := lock.New(ctx, s2, "jobs/nightly")
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.TryLock(ctx); !errors.Is(err, kv.ErrLockHeld) {
		t.Errorf("TryLock while held elsewhere: %v, want ErrLockHeld", err)
	}
	lost := m1.Lost()
	first := m1.Token()
	if err := m1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("Lost() not closed by Unlock")
	}
	if err := m1.Unlock(ctx); err != nil {
		t.Errorf("second Unlock: %v, want nil", err)
	}
	if err := m2.TryLock(ctx); err != nil {
		t.Fatal(err)
	}
	if m2.Token() <= first {
		t.Errorf("next holder's token %d does not exceed %d", m2.Token(), first)
	}
	if err := m1.GuardedPut(ctx, "jobs/out", []byte("late"), nil); !errors.Is(err, kv.ErrNotLocked) && !errors.Is(err, kv.ErrLockLost) {
		t.Errorf("GuardedPut by the old holder: %v, want ErrNotLocked or ErrLockLost", err)
	}
	if err := m2.GuardedPut(ctx, "jobs/out", []byte("ok"), nil); err != nil {
		t.Errorf("GuardedPut by the holder: %v", err)
	}
	if err := m2.GuardedDelete(ctx, "jobs/out"); err != nil {
		t.Errorf("GuardedDelete by the holder: %v", err)
	}
	_ = m2.Unlock(ctx)
}

func TestDoRunsWhileHeldAndReleases(t *testing.T) {
	s := memory.New()
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	var token uint64
	err := lock.Do(ctx, s, "jobs/a", func(ctx context.Context, tok uint64) error {
		token = tok
		return nil
	})
	if err != nil || token == 0 {
		t.Fatalf("Do = %v with token %d; want nil and a token", err, token)
	}
	// Released: another TryLock succeeds at once.
	m, _ := lock.New(ctx, s, "jobs/a")
	if err := m.TryLock(ctx); err != nil {
		t.Fatalf("TryLock after Do: %v, want the lock released", err)
	}
	_ = m.Unlock(ctx)

	boom := errors.New("boom")
	if err := lock.Do(ctx, s, "jobs/a", func(context.Context, uint64) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Do = %v, want fn's error", err)
	}
}

func TestDoCancelsOnLoss(t *testing.T) {
	b := memory.NewBackend()
	defer b.Close()
	s := b.Client()
	defer func() { _ = s.Close() }()
	err := lock.Do(context.Background(), s, "jobs/b", func(ctx context.Context, _ uint64) error {
		s.Kill() // the holder is cut off: its hold expires on the backend
		select {
		case <-ctx.Done():
			if !errors.Is(context.Cause(ctx), kv.ErrLockLost) {
				t.Errorf("fn ctx cause %v, want ErrLockLost", context.Cause(ctx))
			}
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("fn's ctx not cancelled 10s after the lock was lost")
		}
	}, lock.WithTTL(200*time.Millisecond))
	if !errors.Is(err, kv.ErrLockLost) || !errors.Is(err, context.Canceled) {
		t.Errorf("Do = %v, want an error matching both ErrLockLost and context.Canceled", err)
	}
}

func TestLockHonoursContext(t *testing.T) {
	b := memory.NewBackend()
	defer b.Close()
	s1, s2 := b.Client(), b.Client()
	defer func() { _ = s1.Close() }()
	defer func() { _ = s2.Close() }()
	m1, _ := lock.New(context.Background(), s1, "jobs/c")
	m2, _ := lock.New(context.Background(), s2, "jobs/c")
	if err := m1.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := m2.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock while held, with a deadline: %v, want DeadlineExceeded", err)
	}
	if m2.IsHeld() {
		t.Error("m2 holds after a failed Lock")
	}
	_ = m1.Unlock(context.Background())
}
