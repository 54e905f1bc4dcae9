package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
)

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, d)
		}
		<-tick.C
	}
}

func recv[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing within %v", what, d)
	}
	var zero T
	return zero
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestConfigValidation(t *testing.T) {
	ok := []string{"http://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		cfg  etcd.Config
	}{
		{"no endpoints", etcd.Config{}},
		{"empty endpoint", etcd.Config{Endpoints: []string{""}}},
		{"user without password", etcd.Config{Endpoints: ok, Username: "u"}},
		{"negative dial timeout", etcd.Config{Endpoints: ok, DialTimeout: -time.Second}},
		{"reserved root", etcd.Config{Endpoints: ok, Root: "a/__regent"}},
		{"bad root", etcd.Config{Endpoints: ok, Root: "a//b"}},
		{"MinTTL below a second", etcd.Config{Endpoints: ok, MinTTL: 500 * time.Millisecond}},
		{"negative LockTTL", etcd.Config{Endpoints: ok, LockTTL: -time.Second}},
		{"LockTTL below MinTTL", etcd.Config{Endpoints: ok, LockTTL: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := etcd.New(testCtx(t, 5*time.Second), tc.cfg)
			if !errors.Is(err, etcd.ErrInvalidConfig) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("New(%+v): got %v, want ErrInvalidConfig", tc.cfg, err)
			}
		})
	}
	if _, err := etcd.NewFromClient(nil, etcd.Config{}); !errors.Is(err, etcd.ErrInvalidConfig) {
		t.Errorf("NewFromClient(nil): got %v, want ErrInvalidConfig", err)
	}
	if _, err := etcd.NewFromClient(&clientv3.Client{}, etcd.Config{Endpoints: []string{"http://127.0.0.1:1"}}); !errors.Is(err, etcd.ErrInvalidConfig) {
		t.Errorf("NewFromClient with Endpoints: got %v, want ErrInvalidConfig (they come from the client)", err)
	}
}

func TestNewUnreachable(t *testing.T) {
	port := testenv.FreePort(t) // nothing listens there
	start := time.Now()
	s, err := etcd.New(testCtx(t, 10*time.Second), etcd.Config{
		Endpoints:   []string{"http://127.0.0.1:" + strconv.Itoa(port)},
		DialTimeout: 500 * time.Millisecond,
	})
	if !errors.Is(err, kv.ErrNotReachable) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("New on a dead endpoint: got %v, want ErrNotReachable", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("New on a dead endpoint took %v, want about its 500ms DialTimeout", el)
	}
}

func TestNewFromClientLeavesClientOpen(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx := testCtx(t, 20*time.Second)
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	defer func() { _ = c.Close() }()
	s, err := etcd.NewFromClient(c, etcd.Config{Root: "mine"})
	if err != nil {
		t.Fatalf("NewFromClient: %v", err)
	}
	if s.Client() != c {
		t.Errorf("Client() is not the client given")
	}
	if err := s.Put(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Put(ctx, "k", []byte("v"), nil); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Put after Close: got %v, want ErrClosed", err)
	}
	resp, err := c.Get(ctx, "/mine/k")
	if err != nil {
		t.Fatalf("the caller's client after Store.Close: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Errorf("raw Get /mine/k: got %v, want v (keys live under /<Root>/)", resp.Kvs)
	}
}

func TestInternalKeysOutOfUserReach(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx := testCtx(t, 20*time.Second)
	s := newStore(t, eps, etcd.Config{Root: "r"})
	defer func() { _ = s.Close() }()
	tree, err := s.WatchTree(ctx, "", nil)
	if err != nil {
		t.Fatalf("WatchTree: %v", err)
	}
	if u := recv(t, tree, 5*time.Second, "WatchTree first"); len(u.Pairs) != 0 {
		t.Fatalf("WatchTree of an empty root: %v", u.Pairs)
	}
	l, err := s.NewLock(ctx, "lk", &kv.LockOptions{Value: []byte("me")})
	if err != nil {
		t.Fatalf("NewLock: %v", err)
	}
	if _, err := l.Lock(ctx); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := s.Put(ctx, "user", []byte("1"), nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	// The lock's key was written first: had it shown, it would come first.
	if u := recv(t, tree, 5*time.Second, "WatchTree after Put"); len(u.Pairs) != 1 || u.Pairs[0].Key != "user" {
		t.Fatalf("WatchTree(root) after a lock and a Put: %+v, want only user", u.Pairs)
	}
	pairs, err := s.List(ctx, "", nil)
	if err != nil || len(pairs) != 1 || pairs[0].Key != "user" {
		t.Fatalf("List(root) with a lock held: %v, %v; want only user", pairs, err)
	}
	if err := s.DeleteTree(ctx, ""); err != nil {
		t.Fatalf("DeleteTree(root): %v", err)
	}
	if err := l.GuardedPut(ctx, "after", []byte("x"), nil); err != nil {
		t.Fatalf("GuardedPut after DeleteTree(root): %v; the lock must survive", err)
	}
	snap, err := s.Snapshot(ctx, "")
	if err != nil || len(snap.Pairs) != 1 || snap.Pairs[0].Key != "after" {
		t.Fatalf("Snapshot(root): %+v, %v; want only after", snap.Pairs, err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

func TestKeepAliveKeysRestoredAfterLeaseLoss(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx := testCtx(t, 30*time.Second)
	s := newStore(t, eps, etcd.Config{Root: "ka"})
	defer func() { _ = s.Close() }()
	if err := s.Put(ctx, "svc", []byte("addr"), &kv.WriteOptions{TTL: 2 * time.Second, KeepAlive: true}); err != nil {
		t.Fatalf("Put KeepAlive: %v", err)
	}
	c := s.Client()
	resp, err := c.Get(ctx, "/ka/svc")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("raw Get: %v, %v; want a key on a lease", resp, err)
	}
	old := resp.Kvs[0].Lease
	// Losing the lease behind the Store's back, as an expiry would.
	if _, err := c.Revoke(ctx, clientv3.LeaseID(old)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	eventually(t, 10*time.Second, "KeepAlive key restored on a new lease", func() bool {
		resp, err := c.Get(ctx, "/ka/svc")
		return err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].Lease != old && string(resp.Kvs[0].Value) == "addr"
	})
	other, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	defer func() { _ = other.Close() }()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close revokes: no waiting for the TTL.
	resp, err = other.Get(ctx, "/ka/svc")
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("KeepAlive key right after Close: %v, %v; want it gone", resp.Kvs, err)
	}
}

// TestSnapshotPaginates reads a prefix larger than one page: every key,
// sorted, at one revision that is not newer than a write made afterwards.
func TestSnapshotPaginates(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx := testCtx(t, 60*time.Second)
	s := newStore(t, eps, etcd.Config{Root: "snap"})
	defer func() { _ = s.Close() }()
	const n = 3500 // pages of 1,000, 2,000 and the last 500
	c := s.Client()
	for i := 0; i < n; {
		var ops []clientv3.Op
		for ; len(ops) < 100 && i < n; i++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/snap/p/%05d", i), "v"))
		}
		if _, err := c.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatalf("seed txn: %v", err)
		}
	}
	snap, err := s.Snapshot(ctx, "p")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if len(snap.Pairs) != n {
		t.Fatalf("Snapshot: %d pairs, want %d", len(snap.Pairs), n)
	}
	for i, p := range snap.Pairs {
		if want := fmt.Sprintf("p/%05d", i); p.Key != want {
			t.Fatalf("Snapshot pair %d: %q, want %q", i, p.Key, want)
		}
		if p.Revision > snap.Revision {
			t.Fatalf("pair %q at revision %d, after the snapshot's %d", p.Key, p.Revision, snap.Revision)
		}
	}
	if err := s.Put(ctx, "p/later", []byte("x"), nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	later, err := s.Get(ctx, "p/later", nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if later.Revision <= snap.Revision {
		t.Errorf("a write after the snapshot has revision %d, not above the snapshot's %d", later.Revision, snap.Revision)
	}
}

// TestKeepAliveRestoreKeepsTheLockGuard: a key written by GuardedPut with
// KeepAlive is restored after a lease loss only while the lock is still
// held. Restoring it unguarded would land a deposed holder's write after
// the lock passed on (here: after the next holder deleted the key).
func TestKeepAliveRestoreKeepsTheLockGuard(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx := testCtx(t, 30*time.Second)
	s := newStore(t, eps, etcd.Config{Root: "kaguard"})
	defer func() { _ = s.Close() }()
	s2 := newStore(t, eps, etcd.Config{Root: "kaguard"})
	defer func() { _ = s2.Close() }()
	ka := &kv.WriteOptions{TTL: 2 * time.Second, KeepAlive: true}

	l, err := s.NewLock(ctx, "lk", nil)
	if err != nil {
		t.Fatalf("NewLock: %v", err)
	}
	if _, err := l.Lock(ctx); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	// Restores run in key order: "a-fenced" is settled before "z-plain".
	if err := l.GuardedPut(ctx, "a-fenced", []byte("old holder"), ka); err != nil {
		t.Fatalf("GuardedPut: %v", err)
	}
	if err := s.Put(ctx, "z-plain", []byte("v"), ka); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	// The next holder takes over and removes the old holder's key.
	l2, err := s2.NewLock(ctx, "lk", nil)
	if err != nil {
		t.Fatalf("NewLock 2: %v", err)
	}
	if _, err := l2.Lock(ctx); err != nil {
		t.Fatalf("Lock 2: %v", err)
	}
	defer func() { _ = l2.Unlock(ctx) }()
	if err := l2.GuardedDelete(ctx, "a-fenced"); err != nil {
		t.Fatalf("GuardedDelete by the next holder: %v", err)
	}

	c := s.Client()
	resp, err := c.Get(ctx, "/kaguard/z-plain")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("raw Get: %v, %v; want a key on a lease", resp, err)
	}
	old := resp.Kvs[0].Lease
	if _, err := c.Revoke(ctx, clientv3.LeaseID(old)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	eventually(t, 10*time.Second, "unguarded KeepAlive key restored", func() bool {
		resp, err := c.Get(ctx, "/kaguard/z-plain")
		return err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].Lease != old
	})
	resp, err = c.Get(ctx, "/kaguard/a-fenced")
	if err != nil {
		t.Fatalf("raw Get: %v", err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("the deposed holder's guarded key came back as %q after the lock passed on", resp.Kvs[0].Value)
	}
}

// TestNestedRootsKeepInternalsApart: two Stores on one cluster whose roots
// nest ("nest" and "nest/inner": two apps, or an admin tool and an app).
// The outer one must not see the inner one's lock keys (they are not even
// valid user keys), nor delete them with DeleteTree, which would break a
// lock held there.
func TestNestedRootsKeepInternalsApart(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx := testCtx(t, 30*time.Second)
	outer := newStore(t, eps, etcd.Config{Root: "nest"})
	defer func() { _ = outer.Close() }()
	inner := newStore(t, eps, etcd.Config{Root: "nest/inner"})
	defer func() { _ = inner.Close() }()
	if err := outer.DeleteTree(ctx, ""); err != nil { // a clean slate across -count runs
		t.Fatalf("DeleteTree: %v", err)
	}
	l, err := inner.NewLock(ctx, "lk", nil)
	if err != nil {
		t.Fatalf("NewLock: %v", err)
	}
	lost, err := l.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	defer func() { _ = l.Unlock(ctx) }()
	if err := inner.Put(ctx, "user", []byte("1"), nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	want := []string{"inner/user"}
	keys := func(ps []*kv.KVPair) []string {
		var ks []string
		for _, p := range ps {
			ks = append(ks, p.Key)
		}
		return ks
	}
	for _, prefix := range []string{"", "inner"} {
		pairs, err := outer.List(ctx, prefix, nil)
		if err != nil || fmt.Sprint(keys(pairs)) != fmt.Sprint(want) {
			t.Errorf("outer List(%q): %v, %v; want %v", prefix, keys(pairs), err, want)
		}
		snap, err := outer.Snapshot(ctx, prefix)
		if err != nil || fmt.Sprint(keys(snap.Pairs)) != fmt.Sprint(want) {
			t.Errorf("outer Snapshot(%q): %v, %v; want %v", prefix, keys(snap.Pairs), err, want)
		}
		wctx, stop := context.WithCancel(ctx)
		tree, err := outer.WatchTree(wctx, prefix, nil)
		if err != nil {
			t.Fatalf("WatchTree: %v", err)
		}
		if u := recv(t, tree, 5*time.Second, "WatchTree first"); fmt.Sprint(keys(u.Pairs)) != fmt.Sprint(want) {
			t.Errorf("outer WatchTree(%q) first update: %v; want %v", prefix, keys(u.Pairs), want)
		}
		stop()
		for range tree { //nolint:revive // until the store closes it
		}
	}
	for _, prefix := range []string{"inner", ""} {
		if err := outer.DeleteTree(ctx, prefix); err != nil {
			t.Fatalf("outer DeleteTree(%q): %v", prefix, err)
		}
		select {
		case <-lost:
			t.Fatalf("outer DeleteTree(%q) ended the inner store's lock", prefix)
		default:
		}
		if err := l.GuardedPut(ctx, "after", []byte("x"), nil); err != nil {
			t.Fatalf("GuardedPut after outer DeleteTree(%q): %v; the inner lock must survive", prefix, err)
		}
		pairs, err := outer.List(ctx, "", nil)
		if err != nil || fmt.Sprint(keys(pairs)) != "[inner/after]" {
			t.Fatalf("outer List after DeleteTree(%q) and a guarded put: %v, %v; want [inner/after]", prefix, keys(pairs), err)
		}
	}
}

// A TTL under the etcd minimum says how to lower that minimum, and a
// KeepAlive key whose etcd client is closed under the Store says so in the
// log, not "lease lost" (first hour: both messages misled).
func TestTTLAndKeepAliveMessagesSayWhatHappened(t *testing.T) {
	eps := testenv.Etcd(t)
	ctx := t.Context()
	core, logs := observer.New(zap.WarnLevel)
	s := newStore(t, eps, etcd.Config{Root: "messages", Logger: zap.New(core)})
	defer func() { _ = s.Close() }()
	err := s.Put(ctx, "short", []byte("v"), &kv.WriteOptions{TTL: time.Second})
	if !errors.Is(err, kv.ErrInvalidTTL) || !strings.Contains(err.Error(), "etcd.Config.MinTTL") {
		t.Errorf("Put with a 1s TTL: %v; want ErrInvalidTTL naming etcd.Config.MinTTL", err)
	}
	if err := s.Put(ctx, "ka", []byte("v"), &kv.WriteOptions{TTL: 2 * time.Second, KeepAlive: true}); err != nil {
		t.Fatal(err)
	}
	_ = s.Client().Close()
	poll.Until(t, 10*time.Second, "a log line about the closed client", func() bool {
		return logs.FilterMessageSnippet("etcd client was closed").Len() > 0
	})
	if n := logs.FilterMessageSnippet("lease lost").Len(); n > 0 {
		t.Errorf("%d log lines say the lease was lost; the client was closed: %v", n, logs.All())
	}
}

// New's errors say what is wrong and where (first hour: a dead port, a
// typo'd scheme and a non-etcd server all gave "context deadline exceeded"
// after 5 s, and a caller's 1 s ctx a bare context.DeadlineExceeded).
func TestNewSaysWhatIsWrong(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	_ = l.Close()
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	for _, tc := range []struct {
		name     string
		endpoint string
		ctx      time.Duration
		want     []error
		says     string
		user     string // credentials make clientv3.New dial and authenticate itself
	}{
		{"typo'd scheme", "htp://127.0.0.1:2379", 5 * time.Second, []error{etcd.ErrInvalidConfig}, `scheme "htp"`, ""},
		{"dead port", dead, 5 * time.Second, []error{kv.ErrNotReachable}, "connection refused", ""},
		{"not etcd", web.URL, 5 * time.Second, []error{kv.ErrNotReachable}, "did not answer as etcd", ""},
		{"caller's deadline", dead, 300 * time.Millisecond, []error{kv.ErrNotReachable, context.DeadlineExceeded}, "the caller's ctx", ""},
		{"caller's deadline with credentials", web.URL, 300 * time.Millisecond, []error{kv.ErrNotReachable, context.DeadlineExceeded}, "the caller's ctx", "app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), tc.ctx)
			defer cancel()
			start := time.Now()
			cfg := etcd.Config{Endpoints: []string{tc.endpoint}, DialTimeout: time.Second}
			if tc.user != "" {
				// A DialTimeout longer than the test allows: the caller's
				// ctx must end the authentication.
				cfg.Username, cfg.Password, cfg.DialTimeout = tc.user, "pw", 10*time.Second
			}
			s, err := etcd.New(ctx, cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("New: %v; want it to match %v", err, w)
				}
			}
			if !strings.Contains(err.Error(), tc.says) || (!errors.Is(tc.want[0], etcd.ErrInvalidConfig) && !strings.Contains(err.Error(), tc.endpoint)) {
				t.Errorf("New: %q; want it to name the endpoint and say %q", err, tc.says)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("New took %v with a 1s DialTimeout", took)
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}
