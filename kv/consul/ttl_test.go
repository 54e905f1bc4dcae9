package consul

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
)

func TestSessionTTLIsHalfRoundedUp(t *testing.T) {
	for _, tc := range []struct{ ttl, want time.Duration }{
		{2 * time.Second, time.Second},
		{3 * time.Second, 1500 * time.Millisecond},
		{2*time.Second + time.Nanosecond, time.Second + time.Nanosecond},
		{maxTTL, maxSessionTTL},
	} {
		got := sessionTTL(tc.ttl)
		if got != tc.want {
			t.Errorf("sessionTTL(%v) = %v, want %v", tc.ttl, got, tc.want)
		}
		// The server's timer runs twice the session TTL: never short of
		// the TTL asked, never more than a nanosecond over.
		if d := 2*got - tc.ttl; d < 0 || d > time.Nanosecond {
			t.Errorf("sessionTTL(%v) = %v: the server would expire it after %v", tc.ttl, got, 2*got)
		}
	}
}

func TestMinTTLIsTwiceSessionTTLMin(t *testing.T) {
	c, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want time.Duration
	}{
		{"default", Config{}, 2 * DefaultSessionTTLMin},
		{"SessionTTLMin", Config{SessionTTLMin: time.Second}, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewFromClient(c, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			if got := s.MinTTL(); got != tc.want {
				t.Fatalf("MinTTL() = %v, want %v", got, tc.want)
			}
			if s.cfg.LockTTL < s.MinTTL() {
				t.Fatalf("LockTTL %v below MinTTL %v", s.cfg.LockTTL, s.MinTTL())
			}
		})
	}
}

func TestTTLBounds(t *testing.T) {
	s := openStore(t, testConfig(agent(t).Addr))
	defer func() { _ = s.Close() }()
	for _, ttl := range []time.Duration{testMinTTL - time.Nanosecond, time.Second, maxTTL + time.Nanosecond} {
		err := s.Put(t.Context(), "ttl/bounds", []byte("v"), &kv.WriteOptions{TTL: ttl})
		var te *kv.TTLError
		if !errors.As(err, &te) || !errors.Is(err, kv.ErrInvalidTTL) {
			t.Errorf("Put with TTL %v = %v, want a *kv.TTLError", ttl, err)
			continue
		}
		if ttl < testMinTTL && te.Min != testMinTTL {
			t.Errorf("Put with TTL %v: TTLError.Min = %v, want %v", ttl, te.Min, testMinTTL)
		}
		_, err = s.NewLock(t.Context(), "ttl/bounds", &kv.LockOptions{TTL: ttl})
		if !errors.As(err, &te) {
			t.Errorf("NewLock with TTL %v = %v, want a *kv.TTLError", ttl, err)
		}
	}
	// The smallest TTL reaches the server as session_ttl_min itself.
	if err := s.Put(t.Context(), "ttl/bounds", []byte("v"), &kv.WriteOptions{TTL: testMinTTL}); err != nil {
		t.Fatalf("Put with TTL %v: %v", testMinTTL, err)
	}
}

// RenewDeadline is shortened to leave driver.LostMargin before the earliest
// server-side expiry; a shorter one is kept.
func TestRenewDeadlineLeavesMargin(t *testing.T) {
	c, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewFromClient(c, Config{SessionTTLMin: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	for _, tc := range []struct{ ttl, asked, want time.Duration }{
		{3 * time.Second, 0, 2 * time.Second},
		{3 * time.Second, time.Second, time.Second},
		{3 * time.Second, 3*time.Second - time.Nanosecond, 2700 * time.Millisecond},
		{2 * time.Second, 1900 * time.Millisecond, 1800 * time.Millisecond},
	} {
		l, err := s.NewLock(t.Context(), "margin", &kv.LockOptions{TTL: tc.ttl, RenewDeadline: tc.asked})
		if err != nil {
			t.Fatalf("NewLock(TTL %v, RenewDeadline %v): %v", tc.ttl, tc.asked, err)
		}
		if got := l.(*locker).deadline; got != tc.want {
			t.Errorf("NewLock(TTL %v, RenewDeadline %v): deadline %v, want %v", tc.ttl, tc.asked, got, tc.want)
		}
	}
	var te *kv.TTLError
	if _, err := s.NewLock(t.Context(), "margin", &kv.LockOptions{TTL: 3 * time.Second, RenewDeadline: 3 * time.Second}); !errors.As(err, &te) {
		t.Errorf("NewLock with RenewDeadline = TTL: %v, want a *kv.TTLError", err)
	}
}

// Every kind of session reaches the server with half the TTL asked, since
// the server expires a session twice its TTL after its last renewal.
func TestSessionsCarryHalfTheTTL(t *testing.T) {
	s := openStore(t, testConfig(agent(t).Addr))
	defer func() { _ = s.Close() }()
	ctx := t.Context()
	const ttl = 3 * time.Second
	if err := s.Put(ctx, "half/plain", []byte("v"), &kv.WriteOptions{TTL: ttl}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "half/keepalive", []byte("v"), &kv.WriteOptions{TTL: ttl, KeepAlive: true}); err != nil {
		t.Fatal(err)
	}
	l, err := s.NewLock(ctx, "half/lock", &kv.LockOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Unlock(ctx) }()
	for _, ck := range []string{s.consulKey("half/plain"), s.consulKey("half/keepalive"), s.lockKey("half/lock")} {
		p, _, err := s.kv.Get(ck, nil)
		if err != nil || p == nil || p.Session == "" {
			t.Fatalf("%s: %+v, %v: want a key held by a session", ck, p, err)
		}
		se, _, err := s.client.Session().Info(p.Session, nil)
		if err != nil || se == nil {
			t.Fatalf("session of %s: %+v, %v", ck, se, err)
		}
		if got, want := se.TTL, (ttl / 2).String(); got != want {
			t.Errorf("session of %s has TTL %q, want %q", ck, got, want)
		}
	}
}

// expiryBound is how late past its TTL a key may vanish in these tests:
// the server's reaping (a timer, then one raft apply) plus polling and a
// loaded machine. Before the fix Consul took up to twice the TTL: a 2 s
// TTL key lived until 4 s.
const expiryBound = time.Second

// goneWithin polls until key is gone and returns how long after start
// that was observed, failing after ttl+expiryBound.
func goneWithin(t *testing.T, s *Store, key string, start time.Time, ttl time.Duration) time.Duration {
	t.Helper()
	poll.Until(t, ttl+expiryBound-time.Since(start), key+" gone within its TTL", func() bool {
		ok, err := s.Exists(t.Context(), key, nil)
		if err != nil {
			t.Fatalf("Exists(%s): %v", key, err)
		}
		return !ok
	})
	return time.Since(start)
}

// A TTL key vanishes at its TTL, not at twice it.
func TestTTLKeyGoneAtTTL(t *testing.T) {
	s := openStore(t, testConfig(agent(t).Addr))
	defer func() { _ = s.Close() }()
	ttl := testMinTTL
	start := time.Now()
	if err := s.Put(t.Context(), "expiry/plain", []byte("v"), &kv.WriteOptions{TTL: ttl}); err != nil {
		t.Fatal(err)
	}
	// The session was created after start, so the key cannot go before
	// start+TTL.
	d := goneWithin(t, s, "expiry/plain", start, ttl)
	if d < ttl {
		t.Fatalf("key with TTL %v gone after %v", ttl, d)
	}
	t.Logf("key with TTL %v gone %v after the Put started", ttl, d.Round(time.Millisecond))
}

// consistently checks cond every 10 ms for d and fails the first time it
// is false: it checks that time passed without a change, not an ordering.
func consistently(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		if !cond() {
			t.Fatalf("no longer true: %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not ordering
	}
}

// The KeepAlive key and the lock of a client that died go TTL after its
// death at the latest, and not before TTL after its last renewal.
func TestKilledClientExpiresAtTTL(t *testing.T) {
	srv := agent(t)
	ttl := testMinTTL
	owner := openStore(t, testConfig(srv.Addr))
	defer func() { _ = owner.Close() }()
	other := openStore(t, testConfig(srv.Addr))
	defer func() { _ = other.Close() }()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := owner.Put(ctx, "expiry/keepalive", []byte("v"), &kv.WriteOptions{TTL: ttl, KeepAlive: true}); err != nil {
		t.Fatal(err)
	}
	held, err := owner.NewLock(ctx, "expiry/lock", &kv.LockOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	lost, err := held.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// While the client lives, renewals (every TTL/6) keep both past the
	// TTL.
	consistently(t, ttl+ttl/2, "the KeepAlive key and the lock outlive their TTL", func() bool {
		ok, err := other.Exists(ctx, "expiry/keepalive", nil)
		select {
		case <-lost:
			return false
		default:
		}
		return err == nil && ok
	})
	killed := time.Now()
	owner.kill()

	waiter, err := other.NewLock(ctx, "expiry/lock", &kv.LockOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	took := make(chan time.Duration, 1)
	go func() {
		defer close(took)
		if _, err := waiter.Lock(ctx); err == nil {
			took <- time.Since(killed)
		}
	}()
	d := goneWithin(t, other, "expiry/keepalive", killed, ttl)
	// The last renewal came at most a renewal period (TTL/6) before the
	// kill, and the server keeps the session TTL after it.
	if early := ttl - ttl/6 - 100*time.Millisecond; d < early {
		t.Errorf("KeepAlive key gone %v after its client died: before %v", d, early)
	}
	timer := time.NewTimer(ttl + expiryBound - time.Since(killed))
	defer timer.Stop()
	select {
	case d, ok := <-took:
		if !ok {
			t.Fatal("Lock after the holder died failed")
		}
		if d > ttl+expiryBound {
			t.Errorf("lock of a dead holder taken over after %v (TTL %v)", d, ttl)
		}
		t.Logf("TTL %v: KeepAlive key gone, lock taken over %v after the kill", ttl, d.Round(time.Millisecond))
		if err := waiter.Unlock(ctx); err != nil {
			t.Errorf("Unlock: %v", err)
		}
	case <-timer.C:
		cancel()
		<-took
		t.Fatalf("lock of a dead holder not taken over %v after the kill (TTL %v)", time.Since(killed), ttl)
	}
}
