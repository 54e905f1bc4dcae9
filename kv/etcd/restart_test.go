package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
)

// TestWatchesResumeAcrossServerRestart stops the server under live Watch,
// WatchTree and Events streams, restarts it on the same data, and writes
// right away from another client (so the writes land while the streams
// are still reconnecting): every stream must see them, with nothing lost,
// repeated or closed.
func TestWatchesResumeAcrossServerRestart(t *testing.T) {
	srv := testenv.EtcdServer(t)
	ctx := testCtx(t, 60*time.Second)
	s := newStore(t, srv.Endpoints(), etcd.Config{Root: "rs"})
	defer func() { _ = s.Close() }()

	if err := s.Put(ctx, "d/a", []byte("1"), nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	snap, err := s.Snapshot(ctx, "d")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	w, err := s.Watch(ctx, "k", nil)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	tree, err := s.WatchTree(ctx, "d", nil)
	if err != nil {
		t.Fatalf("WatchTree: %v", err)
	}
	events, err := s.Events(ctx, "d", snap.Revision)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if u := recv(t, w, 5*time.Second, "Watch first"); u.Pair != nil || u.Err != nil {
		t.Fatalf("Watch first update: %+v, want a missing key", u)
	}
	if u := recv(t, tree, 5*time.Second, "WatchTree first"); len(u.Pairs) != 1 {
		t.Fatalf("WatchTree first update: %+v, want d/a", u)
	}

	t0 := time.Now()
	srv.Stop()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Logf("restart took %v", time.Since(t0))
	raw, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	defer func() { _ = raw.Close() }()
	if _, err := raw.Put(ctx, "/rs/k", "after"); err != nil {
		t.Fatalf("raw Put: %v", err)
	}
	if _, err := raw.Put(ctx, "/rs/d/b", "2"); err != nil {
		t.Fatalf("raw Put: %v", err)
	}

	if u := recv(t, w, 15*time.Second, "Watch after restart"); u.Err != nil || u.Pair == nil || string(u.Pair.Value) != "after" {
		t.Fatalf("Watch after restart: %+v, want k=after", u)
	}
	t.Logf("watch resumed after %v", time.Since(t0))
	if u := recv(t, tree, 15*time.Second, "WatchTree after restart"); u.Err != nil || len(u.Pairs) != 2 || u.Pairs[1].Key != "d/b" {
		t.Fatalf("WatchTree after restart: %+v, want d/a and d/b", u)
	}
	for {
		b := recv(t, events, 15*time.Second, "Events after restart")
		if b.Err != nil {
			t.Fatalf("Events after restart: %v", b.Err)
		}
		if len(b.Events) == 0 {
			continue // progress
		}
		if len(b.Events) != 1 || b.Events[0].Pair.Key != "d/b" || b.Events[0].Type != kv.EventPut {
			t.Fatalf("Events after restart: %+v, want exactly put d/b", b.Events)
		}
		break
	}
}

// TestUnreachableServerFailsFast: with the server gone, calls return
// ErrNotReachable by the caller's deadline instead of hanging.
func TestUnreachableServerFailsFast(t *testing.T) {
	srv := testenv.EtcdServer(t)
	s := newStore(t, srv.Endpoints(), etcd.Config{})
	defer func() { _ = s.Close() }()
	srv.Stop()
	for name, call := range map[string]func(ctx context.Context) error{
		"Get":  func(ctx context.Context) error { _, err := s.Get(ctx, "k", nil); return err },
		"Put":  func(ctx context.Context) error { return s.Put(ctx, "k", []byte("v"), nil) },
		"List": func(ctx context.Context) error { _, err := s.List(ctx, "p", nil); return err },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		start := time.Now()
		err := call(ctx)
		cancel()
		if !errors.Is(err, kv.ErrNotReachable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s on a stopped server: got %v, want ErrNotReachable and DeadlineExceeded", name, err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("%s on a stopped server took %v with a 500ms deadline", name, el)
		}
	}
}

// TestLockLostWhenServerStops: the holder's lost channel closes once
// renewals fail, within the lock TTL of the server going away.
func TestLockLostWhenServerStops(t *testing.T) {
	srv := testenv.EtcdServer(t)
	ctx := testCtx(t, 30*time.Second)
	const ttl = 3 * time.Second
	s := newStore(t, srv.Endpoints(), etcd.Config{})
	defer func() { _ = s.Close() }()
	l, err := s.NewLock(ctx, "lk", &kv.LockOptions{TTL: ttl})
	if err != nil {
		t.Fatalf("NewLock: %v", err)
	}
	lost, err := l.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	stopped := time.Now()
	srv.Stop()
	select {
	case <-lost:
	case <-time.After(2 * ttl):
		t.Fatalf("lost channel still open %v after the server stopped", 2*ttl)
	}
	if el := time.Since(stopped); el >= ttl {
		t.Errorf("lost signalled %v after the server stopped; want before the %v TTL", el, ttl)
	}
	if tok := l.Token(); tok != 0 {
		t.Errorf("Token after loss: %d, want 0", tok)
	}
	if err := l.GuardedPut(ctx, "x", []byte("v"), nil); !errors.Is(err, kv.ErrNotLocked) {
		t.Errorf("GuardedPut after loss: %v, want ErrNotLocked", err)
	}
}

// TestLockLostBeforeHandover: a holder cut off from the server (its client
// killed, nothing revoked) learns of the loss before the server hands the
// lock to the next contender.
func TestLockLostBeforeHandover(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx := testCtx(t, 30*time.Second)
	const ttl = 3 * time.Second
	a := newStore(t, eps, etcd.Config{Root: "ho"})
	defer func() { _ = a.Close() }()
	b := newStore(t, eps, etcd.Config{Root: "ho"})
	defer func() { _ = b.Close() }()
	la, err := a.NewLock(ctx, "lk", &kv.LockOptions{TTL: ttl})
	if err != nil {
		t.Fatalf("NewLock: %v", err)
	}
	lb, err := b.NewLock(ctx, "lk", &kv.LockOptions{TTL: ttl})
	if err != nil {
		t.Fatalf("NewLock: %v", err)
	}
	lostA, err := la.Lock(ctx)
	if err != nil {
		t.Fatalf("a.Lock: %v", err)
	}
	tokA := la.Token()
	_ = a.Client().Close()
	if _, err := lb.Lock(ctx); err != nil {
		t.Fatalf("b.Lock: %v", err)
	}
	select {
	case <-lostA:
	default:
		t.Fatalf("b holds the lock while a's lost channel is still open")
	}
	if tokB := lb.Token(); tokB <= tokA {
		t.Errorf("fencing tokens: a %d, then b %d; want b > a", tokA, tokB)
	}
	if err := lb.Unlock(ctx); err != nil {
		t.Errorf("b.Unlock: %v", err)
	}
}

// TestLockHonoursRenewDeadline: LockOptions.RenewDeadline is how long the
// holder may go unconfirmed before it declares the lock lost; a holder cut
// off must give up within it, not near the TTL. It is validated like the
// TTL, and renewals are frequent enough that a healthy hold outlives it.
func TestLockHonoursRenewDeadline(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx := testCtx(t, 30*time.Second)
	const ttl, renew = 6 * time.Second, 2 * time.Second
	s := newStore(t, eps, etcd.Config{Root: "renew"})
	defer func() { _ = s.Close() }()
	for _, bad := range []time.Duration{-time.Second, ttl, ttl + time.Second} {
		if _, err := s.NewLock(ctx, "lk", &kv.LockOptions{TTL: ttl, RenewDeadline: bad}); !errors.Is(err, kv.ErrInvalidTTL) {
			t.Errorf("NewLock with RenewDeadline %v and TTL %v: %v, want ErrInvalidTTL", bad, ttl, err)
		}
	}
	l, err := s.NewLock(ctx, "lk", &kv.LockOptions{TTL: ttl, RenewDeadline: renew})
	if err != nil {
		t.Fatalf("NewLock: %v", err)
	}
	lost, err := l.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	healthy := time.NewTimer(renew + renew/2)
	select {
	case <-lost:
		t.Fatalf("lost a healthy hold within %v: renewals must come more often than RenewDeadline", renew+renew/2)
	case <-healthy.C:
	}
	cut := time.Now()
	_ = s.Client().Close()
	select {
	case <-lost:
	case <-time.After(ttl):
		t.Fatalf("lost channel still open %v after the cut", ttl)
	}
	if el := time.Since(cut); el > renew+500*time.Millisecond {
		t.Errorf("lost signalled %v after the cut; want within the %v RenewDeadline", el, renew)
	}
}

// TestLockDefaultRenewDeadline: without a RenewDeadline the holder gives up
// at most two thirds of the TTL after its last confirmed renewal, as the
// kv.LockOptions contract says of the driver default. Cut right after Lock
// (the grant is the last confirmation), the lost channel closes by then.
func TestLockDefaultRenewDeadline(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx := testCtx(t, 30*time.Second)
	const ttl = 6 * time.Second
	s := newStore(t, eps, etcd.Config{Root: "renewdefault"})
	defer func() { _ = s.Close() }()
	l, err := s.NewLock(ctx, "lk", &kv.LockOptions{TTL: ttl})
	if err != nil {
		t.Fatalf("NewLock: %v", err)
	}
	start := time.Now()
	lost, err := l.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	_ = s.Client().Close()
	select {
	case <-lost:
	case <-time.After(ttl):
		t.Fatalf("lost channel still open %v after the cut", ttl)
	}
	if el, limit := time.Since(start), ttl*2/3+500*time.Millisecond; el > limit {
		t.Errorf("lost signalled %v after the grant; want within 2/3 of the %v TTL (limit %v)", el, ttl, limit)
	}
}
