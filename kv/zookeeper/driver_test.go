package zookeeper_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/zookeeper"
)

func open(t *testing.T, cfg zookeeper.Config) *zookeeper.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := zookeeper.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestChrootIsolates(t *testing.T) {
	ctx := t.Context()
	a := open(t, config([]string{server.Addr + "/chroot-a"}, "/regent"))
	b := open(t, config(server.Servers(), "/chroot-b/regent"))
	if err := a.Put(ctx, "k", []byte("a"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k", nil); !errors.Is(err, kv.ErrKeyNotFound) {
		t.Fatalf("other root sees the key: got %v, want ErrKeyNotFound", err)
	}
	// The chroot of the connect string is a prefix of Root.
	same := open(t, config(server.Servers(), "/chroot-a/regent"))
	got, err := same.Get(ctx, "k", nil)
	if err != nil || string(got.Value) != "a" {
		t.Fatalf("Get through the explicit root: %v, %v; want a", got, err)
	}
}

func TestDigestAuthACL(t *testing.T) {
	ctx := t.Context()
	cfg := config(server.Servers(), "/auth")
	cfg.Auth = "alice:secret"
	s := open(t, cfg)
	if err := s.Put(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	raw, _, err := zk.Connect(server.Servers(), testSessionTimeout, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, _, err := raw.Get("/auth/k"); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("anonymous read of a digest-protected key: got %v, want ErrNoAuth", err)
	}
	wrong := cfg
	wrong.Auth = "alice:wrong"
	bad, err := zookeeper.New(ctx, wrong)
	if err == nil {
		_, gerr := bad.Get(ctx, "k", nil)
		_ = bad.Close()
		if gerr == nil {
			t.Fatal("a wrong password read the key")
		}
	}
}

func TestSeveralServersOneDead(t *testing.T) {
	dead := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	s := open(t, config([]string{dead, server.Addr}, "/several"))
	if err := s.Put(t.Context(), "k", []byte("v"), nil); err != nil {
		t.Fatalf("Put with a dead server first in the list: %v", err)
	}
}

func TestReconnectKeepsEvents(t *testing.T) {
	srv := testenv.ZooKeeper(t)
	ctx := t.Context()
	cfg := config(srv.Servers(), "/re")
	cfg.SessionTimeout = 20 * time.Second // survive the restart
	s := open(t, cfg)
	if err := s.Put(ctx, "p/a", []byte("1"), nil); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Events(ctx, "p", snap.Revision)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	srv.Start(t)
	// Written by another client while s may still be reconnecting.
	w := open(t, config(srv.Servers(), "/re"))
	if err := w.Put(ctx, "p/b", []byte("2"), nil); err != nil {
		t.Fatal(err)
	}
	// A reconnect that hit the server mid-startup waits out its handshake
	// (a third of the session timeout) before trying again.
	deadline := time.After(cfg.SessionTimeout + 30*time.Second)
	for {
		select {
		case b := <-ch:
			if b.Err != nil {
				t.Fatalf("stream ended across a reconnect: %v", b.Err)
			}
			for _, ev := range b.Events {
				if ev.Pair.Key == "p/b" && ev.Type == kv.EventPut {
					return
				}
			}
		case <-deadline:
			t.Fatal("put made during the reconnect never arrived")
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	ctx := t.Context()
	c := &cutter{}
	cfg := config(server.Servers(), "/expiry")
	cfg.Dialer = c.dial
	s := open(t, cfg)
	if err := s.Put(ctx, "svc", []byte("me"), &kv.WriteOptions{TTL: testSessionTimeout, KeepAlive: true}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Events(ctx, "", snap.Revision)
	if err != nil {
		t.Fatal(err)
	}
	other := open(t, config(server.Servers(), "/expiry"))
	c.cut()
	poll.Until(t, 20*time.Second, "KeepAlive key gone with the expired session", func() bool {
		ok, err := other.Exists(ctx, "svc", nil)
		return err == nil && !ok
	})
	c.heal()
	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case b, open := <-ch:
			if !open {
				t.Fatal("stream closed without ErrCompacted")
			}
			if b.Err != nil {
				if !errors.Is(b.Err, kv.ErrCompacted) {
					t.Fatalf("stream error after expiry: %v, want ErrCompacted", b.Err)
				}
				done = true
			}
		case <-deadline:
			t.Fatal("no ErrCompacted after the session expired")
		}
	}
	poll.Until(t, 20*time.Second, "KeepAlive key re-created on the new session", func() bool {
		p, err := other.Get(ctx, "svc", nil)
		return err == nil && string(p.Value) == "me"
	})
}

// blackHole accepts connections and never answers, as a ZooKeeper that is
// still starting up may do.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

func TestHandshakeThatNeverAnswersIsAbandoned(t *testing.T) {
	// go-zookeeper would wait 10 x 2/3 x 3 s = 20 s on each silent server;
	// the driver gives each handshake max(3 s / (3 x 3), 1 s) = 1 s.
	cfg := config([]string{blackHole(t), blackHole(t), server.Addr}, "/handshake")
	cfg.SessionTimeout = 3 * time.Second
	cfg.ConnectTimeout = 10 * time.Second
	start := time.Now()
	s := open(t, cfg)
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("New took %v past two silent servers, want about 2 s", d)
	}
	if err := s.Put(t.Context(), "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestLockLostOnDisconnect(t *testing.T) {
	ctx := t.Context()
	c := &cutter{}
	cfg := config(server.Servers(), "/lostlock")
	cfg.Dialer = c.dial
	holder := open(t, cfg)
	other := open(t, config(server.Servers(), "/lostlock"))
	l, err := holder.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	lost, err := l.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := l.Token()
	c.cut()
	select {
	case <-lost:
	case <-time.After(testSessionTimeout):
		t.Fatal("lost channel still open after the connection was cut")
	}
	if tok := l.Token(); tok != 0 {
		t.Fatalf("Token after loss = %d, want 0", tok)
	}
	// The server hands the lock on once the holder's session expires.
	l2, err := other.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 4*testSessionTimeout)
	defer cancel()
	if _, err := l2.Lock(lctx); err != nil {
		t.Fatalf("next holder: %v", err)
	}
	if l2.Token() <= first {
		t.Fatalf("fencing token went from %d to %d, want it to grow", first, l2.Token())
	}
	if err := l.GuardedPut(ctx, "job/state", []byte("stale"), nil); !errors.Is(err, kv.ErrNotLocked) {
		t.Fatalf("GuardedPut by the deposed holder: got %v, want ErrNotLocked", err)
	}
}

func TestKeepAliveTakenOverIsReported(t *testing.T) {
	ctx := t.Context()
	c := &cutter{}
	lostKeys := make(chan string, 1)
	cfg := config(server.Servers(), "/takeover")
	cfg.Dialer = c.dial
	cfg.OnKeepAliveLost = func(key string, err error) {
		if !errors.Is(err, kv.ErrKeyExists) {
			t.Errorf("OnKeepAliveLost(%q): got %v, want ErrKeyExists", key, err)
		}
		lostKeys <- key
	}
	s := open(t, cfg)
	other := open(t, config(server.Servers(), "/takeover"))
	if err := s.Put(ctx, "svc", []byte("mine"), &kv.WriteOptions{TTL: testSessionTimeout, KeepAlive: true}); err != nil {
		t.Fatal(err)
	}
	c.cut()
	poll.Until(t, 20*time.Second, "KeepAlive key gone with the expired session", func() bool {
		ok, err := other.Exists(ctx, "svc", nil)
		return err == nil && !ok
	})
	if err := other.Put(ctx, "svc", []byte("theirs"), nil); err != nil {
		t.Fatal(err)
	}
	c.heal()
	select {
	case k := <-lostKeys:
		if k != "svc" {
			t.Fatalf("lost key %q, want svc", k)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the taken-over KeepAlive key was never reported")
	}
	p, err := other.Get(ctx, "svc", nil)
	if err != nil || string(p.Value) != "theirs" {
		t.Fatalf("Get: %v, %v; want the other writer's value kept", p, err)
	}
}

func TestLockWaiterRequeuesAfterSessionExpiry(t *testing.T) {
	ctx := t.Context()
	holder := open(t, config(server.Servers(), "/requeue"))
	c := &cutter{}
	cfg := config(server.Servers(), "/requeue")
	cfg.Dialer = c.dial
	waiter := open(t, cfg)
	hl, err := holder.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hl.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	wl, err := waiter.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := wl.Lock(ctx)
		got <- err
	}()
	// Wait until the waiter's contender is queued, then let its session
	// expire with the contender.
	count := func() int {
		raw, _, err := zk.Connect(server.Servers(), testSessionTimeout, zk.WithLogInfo(false))
		if err != nil {
			return -1
		}
		defer raw.Close()
		names, _, _ := raw.Children("/requeue/__regent_locks/job/__regent_lock")
		return len(names)
	}
	poll.Until(t, 10*time.Second, "waiter queued", func() bool { return count() == 2 })
	c.cut()
	poll.Until(t, 20*time.Second, "waiter's contender gone with its session", func() bool { return count() == 1 })
	c.heal()
	poll.Until(t, 20*time.Second, "waiter queued again on its new session", func() bool {
		select {
		case err := <-got:
			t.Fatalf("waiter's Lock ended across the expiry: %v", err)
		default:
		}
		return count() == 2
	})
	if err := hl.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter's Lock: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("waiter never got the lock after the holder unlocked")
	}
	if err := wl.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// New's errors say what is wrong and where (first hour review of New: a
// caller's short ctx gave a bare context.DeadlineExceeded).
func TestNewSaysWhatIsWrong(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close()
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	for _, tc := range []struct {
		name string
		addr string
		ctx  time.Duration
		want []error
		says string
	}{
		{"dead port", dead, 10 * time.Second, []error{kv.ErrNotReachable}, "connection refused"},
		{"not zookeeper", web.Listener.Addr().String(), 10 * time.Second, []error{kv.ErrNotReachable}, "none gave a session"},
		{"caller's deadline", dead, 300 * time.Millisecond, []error{kv.ErrNotReachable, context.DeadlineExceeded}, "the caller's ctx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), tc.ctx)
			defer cancel()
			s, err := zookeeper.New(ctx, zookeeper.Config{Servers: []string{tc.addr}, ConnectTimeout: 2 * time.Second})
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("New: %v; want it to match %v", err, w)
				}
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), tc.addr) {
				t.Errorf("New: %q; want it to name %s and say %q", err, tc.addr, tc.says)
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}

// TestTreeWatchFollowsANewKeyOfEitherKind: a watched directory whose last
// new child was a KeepAlive (ephemeral) key reads the next one as
// ephemeral too, without a child list; when it is persistent after all,
// the watcher must still list it and arm its child watch, or keys later
// created below it would never be seen.
func TestTreeWatchFollowsANewKeyOfEitherKind(t *testing.T) {
	srv := testenv.ZooKeeper(t)
	ctx := t.Context()
	watcher, writer := open(t, config(srv.Servers(), "/kinds")), open(t, config(srv.Servers(), "/kinds"))
	if err := writer.Put(ctx, "svc/seed", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	ch, err := watcher.WatchTree(ctx, "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	keepAlive := &kv.WriteOptions{TTL: 2 * time.Second, KeepAlive: true}
	steps := []struct {
		key  string
		opts *kv.WriteOptions
	}{
		{"svc/a", keepAlive}, // ephemeral: the next child is guessed ephemeral
		{"svc/b", nil},       // persistent: the guess is wrong
		{"svc/b/c", nil},     // seen only if b's child watch was armed
		{"svc/d", keepAlive}, // guessed persistent again: both reads
		{"svc/e", keepAlive}, // guessed ephemeral, right
		{"svc/e2", nil},
		{"svc/e2/f", nil},
	}
	want := map[string]bool{"svc/seed": true}
	for _, st := range steps {
		if err := writer.Put(ctx, st.key, []byte(st.key), st.opts); err != nil {
			t.Fatal(err)
		}
		want[st.key] = true
		deadline := time.After(10 * time.Second)
		for seen := false; !seen; {
			select {
			case u := <-ch:
				if u.Err != nil {
					t.Fatalf("watch ended: %v", u.Err)
				}
				got := map[string]bool{}
				for _, p := range u.Pairs {
					got[p.Key] = true
				}
				seen = len(got) == len(want)
				for k := range want {
					seen = seen && got[k]
				}
			case <-deadline:
				t.Fatalf("after putting %s: the watch never listed %v", st.key, want)
			}
		}
	}
}

// TestFailedTryLocksLeaveNoWatches: a TryLock that finds the lock held
// removes its contender znode; the watch it had sent on that znode must be
// set (and fire on the delete) before the delete goes out, or the server
// keeps one watch per failed attempt on a path never created again.
func TestFailedTryLocksLeaveNoWatches(t *testing.T) {
	srv := testenv.ZooKeeper(t)
	ctx := t.Context()
	holder, contender := open(t, config(srv.Servers(), "/trylock")), open(t, config(srv.Servers(), "/trylock"))
	held, err := holder.NewLock(ctx, "busy", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	watches := func() int64 {
		n, err := srv.Metric("zk_watch_count")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := watches()
	const attempts = 200
	for range attempts {
		l, err := contender.NewLock(ctx, "busy", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.TryLock(ctx); !errors.Is(err, kv.ErrLockHeld) {
			t.Fatalf("TryLock of a held lock: %v, want kv.ErrLockHeld", err)
		}
	}
	var now int64
	poll.UntilFunc(t, 20*time.Second, func() string {
		return fmt.Sprintf("the server's watches back to %d after %d failed TryLocks (now %d)", before, attempts, now)
	}, func() bool {
		now = watches()
		return now <= before
	})
}

// A KeepAlive key deleted goes with its znode: a service whose instances
// come and go (a registration per pod, say) would otherwise keep an empty
// znode per instance ever registered, which every watcher of the service
// lists again on each change. Found by the register-to-seen benchmark:
// 1,000 registrations made each change cost a child list of 1,000 names.
func TestDeletedKeepAliveKeysLeaveNoZnode(t *testing.T) {
	ctx := t.Context()
	root := fmt.Sprintf("/ka-gone-%d", time.Now().UnixNano())
	s := open(t, config(server.Servers(), root))
	raw, _, err := zk.Connect(server.Servers(), testSessionTimeout, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ka := &kv.WriteOptions{TTL: testSessionTimeout, KeepAlive: true}
	for i := range 3 {
		if err := s.Put(ctx, fmt.Sprintf("svc/put-%d", i), []byte("x"), ka); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "svc/put-0"); err != nil {
		t.Fatal(err)
	}
	p, err := s.Get(ctx, "svc/put-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AtomicDelete(ctx, "svc/put-1", p); !ok || err != nil {
		t.Fatalf("AtomicDelete: %v %v", ok, err)
	}
	l, err := s.NewLock(ctx, "svc-lock", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Unlock(context.Background()) }()
	if err := l.GuardedPut(ctx, "svc/guarded", []byte("x"), ka); err != nil {
		t.Fatal(err)
	}
	if err := l.GuardedDelete(ctx, "svc/guarded"); err != nil {
		t.Fatal(err)
	}
	left, _, err := raw.Children(root + "/svc")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"put-2"}; !slices.Equal(left, want) {
		t.Fatalf("znodes under the service after deleting its KeepAlive keys: %q, want %q", left, want)
	}
	// Gone means gone to readers too, and a key put again is new.
	if _, err := s.Get(ctx, "svc/put-0", nil); !errors.Is(err, kv.ErrKeyNotFound) {
		t.Fatalf("Get of a deleted KeepAlive key: %v", err)
	}
	if err := s.Put(ctx, "svc/put-0", []byte("again"), ka); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Get(ctx, "svc/put-0", nil); err != nil || string(p.Value) != "again" {
		t.Fatalf("Get after putting it again: %v %v", p, err)
	}
}
