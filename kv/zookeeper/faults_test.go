package zookeeper_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
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

// The tests in this file each reproduce a fault that black-box runs found
// (issue "faults"); each failed before its fix.

// A create-only AtomicPut that the server applied must report success,
// even when a Delete lands right after it: the answer comes from the
// create itself, not from a read that follows it.
func TestAtomicPutCreateRacingDelete(t *testing.T) {
	ctx := t.Context()
	w := open(t, config(server.Servers(), "/atomic-race"))
	d := open(t, config(server.Servers(), "/atomic-race"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := d.Delete(ctx, "k")
			if err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
				t.Errorf("Delete: %v", err)
				return
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	created := 0
	for i := range 400 {
		ok, pair, err := w.AtomicPut(ctx, "k", []byte(fmt.Sprint(i)), nil, nil)
		switch {
		case err == nil:
			if !ok || pair == nil || string(pair.Value) != fmt.Sprint(i) || pair.LastIndex == 0 {
				t.Fatalf("AtomicPut(create) = %v, %+v, nil; want true and the pair written", ok, pair)
			}
			created++
		case errors.Is(err, kv.ErrKeyExists):
		default:
			t.Fatalf("AtomicPut(create) #%d racing a Delete: %v; want success or ErrKeyExists", i, err)
		}
	}
	if created == 0 {
		t.Fatal("no create succeeded: the race was never exercised")
	}
}

// gate is a dialer that a test can hold: while held, dials wait.
type gate struct {
	mu     sync.Mutex
	held   chan struct{} // closed to let dials through; nil when open
	conns  []net.Conn
	dialed chan struct{} // a dial is waiting at the gate (cap 1)
}

func newGate() *gate { return &gate{dialed: make(chan struct{}, 1)} }

func (g *gate) dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	if held != nil {
		select {
		case g.dialed <- struct{}{}:
		default:
		}
		<-held
	}
	c, err := net.DialTimeout(network, addr, timeout)
	if err == nil {
		g.mu.Lock()
		g.conns = append(g.conns, c)
		g.mu.Unlock()
	}
	return c, err
}

// cut drops every connection and holds new dials until open.
func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held == nil {
		g.held = make(chan struct{})
	}
	for _, c := range g.conns {
		_ = c.Close()
	}
	g.conns = nil
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
}

// contenders lists the contender znodes of lock key under root, through a
// raw client.
func contenders(t *testing.T, raw *zk.Conn, root, key string) []string {
	t.Helper()
	c, _, err := raw.Children(root + "/__regent_locks/" + key + "/__regent_lock")
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		t.Fatalf("raw Children: %v", err)
	}
	return c
}

func rawConn(t *testing.T, servers []string) *zk.Conn {
	t.Helper()
	raw, _, err := zk.Connect(servers, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.Close)
	return raw
}

// A holder paused past its session timeout wakes up on an expired session
// and campaigns again at once: its next contender is created while the new
// session is being set up. That hold must be a real one (not declared
// lost for the old session's expiry), and nothing may be left behind that
// blocks the others.
func TestLockRetakenAcrossSessionExpiry(t *testing.T) {
	ctx := t.Context()
	g := newGate()
	// Three entries for the one server: go-zookeeper then moves on to
	// another entry after the expired session's handshake without flushing
	// the requests queued meanwhile, as with the members of an ensemble.
	cfg := config([]string{server.Addr, server.Addr, server.Addr}, "/expiry-relock")
	cfg.Dialer = g.dial
	holder := open(t, cfg)
	other := open(t, config(server.Servers(), "/expiry-relock"))
	raw := rawConn(t, server.Servers())
	l, err := holder.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	lost, err := l.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g.cut()
	select {
	case <-lost:
	case <-time.After(2 * testSessionTimeout):
		t.Fatal("lost channel still open 2 session timeouts after the connection was cut")
	}
	poll.Until(t, 4*testSessionTimeout, "the expired session's contender removed by the server", func() bool {
		return len(contenders(t, raw, "/expiry-relock", "job")) == 0
	})
	select {
	case <-g.dialed:
	case <-time.After(10 * time.Second):
		t.Fatal("the client is not reconnecting")
	}
	res := make(chan error, 1)
	var lost2 <-chan struct{}
	go func() {
		var err error
		lost2, err = l.Lock(ctx)
		res <- err
	}()
	// Lock has been entered (and queued its work) while the dial waits at
	// the gate.
	poll.Until(t, 5*time.Second, "Lock waiting for the connection", func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "kv/zookeeper.(*locker).lock(")
	})
	g.open()
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("Lock on the new session: %v", err)
		}
	case <-time.After(6 * testSessionTimeout):
		t.Fatal("Lock did not return on the new session")
	}
	// Held for real: not lost by the old session's expiry, and exclusive.
	deadline := time.Now().Add(2 * testSessionTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-lost2:
			t.Fatal("the new hold was declared lost although its session lives")
		case <-time.After(100 * time.Millisecond):
		}
	}
	l2, err := other.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l2.TryLock(ctx); !errors.Is(err, kv.ErrLockHeld) {
		t.Fatalf("TryLock by another client while held: %v, want ErrLockHeld", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	lctx, cancel := context.WithTimeout(ctx, testSessionTimeout)
	defer cancel()
	if _, err := l2.Lock(lctx); err != nil {
		t.Fatalf("Lock by another client after Unlock: %v (contenders left: %q)", err, contenders(t, raw, "/expiry-relock", "job"))
	}
}

// A server restart longer than the renew deadline ends the hold while the
// session survives: the contender znode must be removed, or the same
// Locker (and everyone else) queues behind it for as long as the session
// lives.
func TestLockRetakenAfterServerRestart(t *testing.T) {
	ctx := t.Context()
	srv := testenv.ZooKeeper(t)
	cfg := config(srv.Servers(), "/restart-relock")
	cfg.SessionTimeout = 10 * time.Second // the session outlives the restart
	holder := open(t, cfg)
	l, err := holder.NewLock(ctx, "job", &kv.LockOptions{RenewDeadline: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lost, err := l.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("lost channel still open 5s into the outage, with a 1s RenewDeadline")
	}
	srv.Start(t)
	other := open(t, cfg)
	raw := rawConn(t, srv.Servers())
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := l.Lock(lctx); err != nil {
		t.Fatalf("Lock again by the same Locker after the restart: %v (contenders: %q)", err, contenders(t, raw, "/restart-relock", "job"))
	}
	if n := len(contenders(t, raw, "/restart-relock", "job")); n != 1 {
		t.Fatalf("%d contenders while one Locker holds the lock, want 1", n)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	l2, err := other.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Lock(lctx); err != nil {
		t.Fatalf("Lock by another client: %v", err)
	}
}

// A KeepAlive key written under a lock must not outlive the lock: after a
// session expiry (which ends the lock) it is reported lost, never
// re-created with a plain create that could bring a deposed leader's
// record back over its successor's.
func TestGuardedKeepAliveNotRestoredAfterExpiry(t *testing.T) {
	ctx := t.Context()
	c := &cutter{}
	lostKeys := make(chan error, 4)
	cfg := config(server.Servers(), "/guarded-restore")
	cfg.Dialer = c.dial
	cfg.OnKeepAliveLost = func(key string, err error) {
		if key == "leader" {
			lostKeys <- err
		}
	}
	s := open(t, cfg)
	other := open(t, config(server.Servers(), "/guarded-restore"))
	l, err := s.NewLock(ctx, "election", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.GuardedPut(ctx, "leader", []byte("term 1"), &kv.WriteOptions{TTL: testSessionTimeout, KeepAlive: true}); err != nil {
		t.Fatal(err)
	}
	c.cut()
	poll.Until(t, 4*testSessionTimeout, "the leader record gone with the expired session", func() bool {
		ok, err := other.Exists(ctx, "leader", nil)
		return err == nil && !ok
	})
	c.heal()
	select {
	case err := <-lostKeys:
		if !errors.Is(err, kv.ErrLockLost) {
			t.Fatalf("OnKeepAliveLost(leader): %v, want ErrLockLost", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the guarded KeepAlive key was not reported lost after the session expiry")
	}
	if _, err := other.Get(ctx, "leader", nil); !errors.Is(err, kv.ErrKeyNotFound) {
		t.Fatalf("leader record after the expiry: %v, want ErrKeyNotFound (not re-created)", err)
	}
}

// The server clamps the session timeout a client asks for; the TTL checks
// of locks and KeepAlive keys use what it granted.
func TestSessionTTLChecksUseTheGrantedTimeout(t *testing.T) {
	ctx := t.Context()
	cfg := config(server.Servers(), "/granted")
	cfg.SessionTimeout = 100 * time.Millisecond // the test server's minimum is 400 ms
	s := open(t, cfg)
	var te *kv.TTLError
	_, err := s.NewLock(ctx, "job", &kv.LockOptions{TTL: 300 * time.Millisecond})
	if !errors.As(err, &te) || te.Min != 400*time.Millisecond {
		t.Fatalf("NewLock(TTL 300ms) with a granted 400ms session: %v, want a *kv.TTLError with Min 400ms", err)
	}
	err = s.Put(ctx, "k", []byte("v"), &kv.WriteOptions{TTL: 300 * time.Millisecond, KeepAlive: true})
	if !errors.As(err, &te) || te.Min != 400*time.Millisecond {
		t.Fatalf("Put(KeepAlive, TTL 300ms) with a granted 400ms session: %v, want a *kv.TTLError with Min 400ms", err)
	}
	if _, err := s.NewLock(ctx, "job", nil); err != nil {
		t.Fatalf("NewLock with the default TTL: %v", err)
	}
}

// A Lock whose create reply is lost, and that gives up meanwhile, must not
// leave a contender behind: its session lives on after the connection
// comes back, and the znode would block every other contender.
func TestAbandonedLockLeavesNoContender(t *testing.T) {
	ctx := t.Context()
	p := testenv.NewProxy(t, server.Addr)
	holder := open(t, config([]string{p.Addr()}, "/abandoned"))
	other := open(t, config(server.Servers(), "/abandoned"))
	raw := rawConn(t, server.Servers())
	l, err := holder.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Prepare the lock's directories, so that the create is the request
	// whose reply is lost.
	if _, err := l.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	p.Mute()
	lctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = l.Lock(lctx)
	cancel()
	if err == nil {
		t.Fatal("Lock succeeded with every reply lost")
	}
	poll.Until(t, 5*time.Second, "the create reached the server", func() bool {
		return len(contenders(t, raw, "/abandoned", "job")) == 1
	})
	// The connection breaks and cannot be made again for a while: the
	// lost create's follow-up requests fail without reaching a server.
	p.Cut()
	poll.Until(t, 10*time.Second, "the holder sees its connection gone", func() bool {
		gctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := holder.Get(gctx, "x", nil)
		return errors.Is(err, kv.ErrNotReachable)
	})
	p.Heal() // the session reconnects, alive
	l2, err := other.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	octx, cancel := context.WithTimeout(ctx, 4*testSessionTimeout)
	defer cancel()
	if _, err := l2.Lock(octx); err != nil {
		t.Fatalf("Lock by another client after the abandoned attempt: %v (contenders: %q)", err, contenders(t, raw, "/abandoned", "job"))
	}
}

// A connection blip on an ensemble: the member the holder talks to dies,
// the client reconnects to another within milliseconds and its session
// lives on. The lock may be kept or reported lost, but it must not be left
// behind a contender nobody owns: the same Locker and other clients take
// it again.
func TestLockRetakenAfterMemberLoss(t *testing.T) {
	ctx := t.Context()
	ens := testenv.ZooKeeperEnsemble(t, 3)
	cfg := config(ens.Servers(), "/member-loss")
	cfg.SessionTimeout = 10 * time.Second // the session outlives the blip
	holder := open(t, cfg)
	l, err := holder.NewLock(ctx, "job", &kv.LockOptions{RenewDeadline: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lost, err := l.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	connected := holder.ConnectedServer()
	victim := -1
	for i, m := range ens {
		if m.Addr == connected {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("holder connected to %q, not a member of %v", connected, ens.Servers())
	}
	ens[victim].Process().Kill()
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	select {
	case <-lost:
		if _, err := l.Lock(lctx); err != nil {
			t.Fatalf("Lock again by the same Locker after the blip: %v", err)
		}
	default:
		// Kept: it must still be ours.
	}
	var live []string
	for i, m := range ens {
		if i != victim {
			live = append(live, m.Addr)
		}
	}
	// The two left may be electing a new leader of their own.
	poll.Until(t, 20*time.Second, "no ensemble leader among the members left", func() bool {
		i := ens.Leader()
		return i >= 0 && i != victim
	})
	raw := rawConn(t, live)
	if n := len(contenders(t, raw, "/member-loss", "job")); n != 1 {
		t.Fatalf("%d contenders while one Locker holds the lock, want 1", n)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	other := open(t, config(live, "/member-loss"))
	l2, err := other.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Lock(lctx); err != nil {
		t.Fatalf("Lock by another client after the blip: %v (contenders: %q)", err, contenders(t, raw, "/member-loss", "job"))
	}
}

// A holder cut off for longer than its renew deadline is told the lock is
// lost; the server still holds its contender (the session lives), and the
// driver removes it so that the lock passes on. That removal must leave the
// holder the margin the design promises between being told and anyone else
// taking the lock, as a session expiry would: the chaos suite saw the next
// leader start 4 ms before the deposed one heard it had lost (seed 9001,
// the ensemble's leader killed).
func TestLostHolderToldBeforeTheLockPassesOn(t *testing.T) {
	ctx := t.Context()
	g := newGate()
	cfg := config(server.Servers(), "/lost-margin")
	cfg.SessionTimeout = 4 * time.Second // lostMargin: 1 s
	cfg.Dialer = g.dial
	holder := open(t, cfg)
	other := open(t, config(server.Servers(), "/lost-margin"))
	l, err := holder.NewLock(ctx, "job", &kv.LockOptions{RenewDeadline: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lost, err := l.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := other.NewLock(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	taken := make(chan time.Time, 1)
	go func() {
		lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if _, err := l2.Lock(lctx); err != nil {
			t.Errorf("Lock by the next contender: %v", err)
			close(taken)
			return
		}
		taken <- time.Now()
		_ = l2.Unlock(ctx)
	}()
	// Wait until the second contender is queued, so that it takes the lock
	// the moment the holder's contender goes.
	raw := rawConn(t, server.Servers())
	poll.Until(t, 5*time.Second, "the second contender queued", func() bool {
		return len(contenders(t, raw, "/lost-margin", "job")) == 2
	})
	g.cut()
	var lostAt time.Time
	select {
	case <-lost:
		lostAt = time.Now()
	case <-time.After(3 * time.Second):
		t.Fatal("lost channel still open 3 s after the cut, with a 1 s RenewDeadline")
	}
	g.open() // the session is alive: the reconnect lets the removal through
	at, ok := <-taken
	if !ok {
		return
	}
	// The removal waits lostMargin (1 s) after the lost signal; half of it
	// leaves room for the scheduling delay of this goroutine's clock read.
	if gap := at.Sub(lostAt); gap < 500*time.Millisecond {
		t.Fatalf("the next contender took the lock %v after the holder was told it had lost it, want at least the 1 s margin", gap)
	}
}

// A Consistent read must see every write acknowledged before it began,
// whichever member serves it. A sync is not enough on ZooKeeper 3.8: it is
// not a quorum operation (ZOOKEEPER-1675), and on the leader it is not even
// ordered after the commits the leader has sent its followers but not yet
// applied itself, so a reader on the leader could miss a write a follower
// had just acknowledged (the chaos suite's checker found one such read,
// 0.4 ms after the write's reply; seed 9008 of the member-loss scenario).
// Here a writer on each follower hands every acknowledged value straight
// to a reader on the leader.
func TestConsistentReadAfterAcknowledgedWriteOnAnotherMember(t *testing.T) {
	ctx := t.Context()
	ens := testenv.ZooKeeperEnsemble(t, 3)
	leader := -1
	poll.Until(t, 20*time.Second, "an ensemble leader", func() bool {
		leader = ens.Leader()
		return leader >= 0
	})
	reader := open(t, config([]string{ens[leader].Addr}, "/consistent"))
	var writers []*zookeeper.Store
	for i, m := range ens {
		if i != leader {
			writers = append(writers, open(t, config([]string{m.Addr}, "/consistent")))
		}
	}
	const rounds = 3000
	stale := 0
	for i := range rounds {
		want := fmt.Sprint(i)
		if err := writers[i%2].Put(ctx, "k", []byte(want), nil); err != nil {
			t.Fatalf("Put #%d: %v", i, err)
		}
		got, err := reader.Get(ctx, "k", &kv.ReadOptions{Consistent: true})
		if err != nil {
			t.Fatalf("Consistent Get #%d: %v", i, err)
		}
		if string(got.Value) != want {
			stale++
			t.Logf("round %d: Consistent Get on the leader returned %q after %q was acknowledged", i, got.Value, want)
		}
	}
	if stale > 0 {
		t.Fatalf("%d of %d Consistent reads were stale", stale, rounds)
	}
}
