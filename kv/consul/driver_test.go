package consul

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
)

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"root is the store root", Config{Root: "/"}},
		{"root with reserved segment", Config{Root: "a/__regent"}},
		{"root with empty segment", Config{Root: "a//b"}},
		{"negative SessionTTLMin", Config{SessionTTLMin: -time.Second}},
		{"negative LockDelay", Config{LockDelay: -time.Second}},
		{"LockTTL below SessionTTLMin", Config{SessionTTLMin: 10 * time.Second, LockTTL: time.Second}},
		{"LockTTL below twice SessionTTLMin", Config{SessionTTLMin: 10 * time.Second, LockTTL: 15 * time.Second}},
		{"LockTTL above two days", Config{SessionTTLMin: time.Second, LockTTL: 49 * time.Hour}},
		{"SessionTTLMin above a day", Config{SessionTTLMin: 25 * time.Hour}},
		{"unknown scheme", Config{Addresses: []string{"unix:///tmp/consul.sock"}}},
		{"path in address", Config{Addresses: []string{"127.0.0.1:8500/x"}}},
		{"mixed schemes", Config{Addresses: []string{"https://a:1", "http://b:2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(t.Context(), tc.cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New(%+v) = %v, want ErrInvalidConfig", tc.cfg, err)
			}
		})
	}
	t.Run("NewFromClient refuses connection fields", func(t *testing.T) {
		c, err := api.NewClient(api.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewFromClient(c, Config{Token: "x"}); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("got %v, want ErrInvalidConfig", err)
		}
		if _, err := NewFromClient(nil, Config{}); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("nil client: got %v, want ErrInvalidConfig", err)
		}
	})
}

// A watch must end as soon as its ctx does, not when the blocking query's
// wait time runs out.
func TestWatchCancelReturnsAtOnce(t *testing.T) {
	cfg := testConfig(agent(t).Addr)
	cfg.WaitTime = time.Minute
	s := openStore(t, cfg)
	defer func() { _ = s.Close() }()
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := s.Watch(ctx, "cancel/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := <-ch; u.Pair != nil || u.Err != nil {
		t.Fatalf("first update %+v, want a missing key", u)
	}
	tree, err := s.WatchTree(ctx, "cancel", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-tree
	start := time.Now()
	cancel()
	for range ch {
	}
	for range tree {
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("watches ended %v after cancel, want well below the %v wait time", d, cfg.WaitTime)
	}
}

// fakeConsul serves the KV GETs of one key from a script of answers, each
// an index and a value, and records the wait index of every request.
type fakeConsul struct {
	mu      sync.Mutex
	answers []fakeAnswer
	seen    []string
}

type fakeAnswer struct {
	index  uint64
	modify uint64
	value  string
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/kv/regent/k" && r.URL.Path != "/v1/kv/regent/" {
		w.Header().Set("X-Consul-Index", "1")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	f.mu.Lock()
	f.seen = append(f.seen, r.URL.Query().Get("index"))
	if len(f.answers) == 0 {
		f.mu.Unlock()
		<-r.Context().Done() // block like a long wait
		return
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	f.mu.Unlock()
	w.Header().Set("X-Consul-Index", strconv.FormatUint(a.index, 10))
	_ = json.NewEncoder(w).Encode([]*api.KVPair{{Key: "regent/k", Value: []byte(a.value), CreateIndex: 1, ModifyIndex: a.modify}})
}

func (f *fakeConsul) indexes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

// When the index goes backwards (a snapshot restore), the watch resets it
// to 0, re-reads, and keeps going from the new index.
func TestWatchIndexGoesBackwards(t *testing.T) {
	f := &fakeConsul{answers: []fakeAnswer{
		{index: 100, modify: 100, value: "v1"}, // initial read
		{index: 50, modify: 50, value: "v2"},   // index went back
		{index: 60, modify: 50, value: "v2"},   // the read after the reset
	}}
	s := storeOnFake(t, f, 0)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := s.Watch(ctx, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"v1", "v2"} {
		u := <-ch
		if u.Err != nil || u.Pair == nil || string(u.Pair.Value) != want {
			t.Fatalf("got update %+v, want value %q", u, want)
		}
	}
	poll.Until(t, 5*time.Second, "a blocking query from index 60", func() bool {
		got := f.indexes()
		return len(got) == 4 && got[3] == "60"
	})
	// Index 0 goes out as no index at all: a read that answers at once.
	if got, want := f.indexes(), []string{"", "100", "", "60"}; !equal(got, want) {
		t.Fatalf("wait indexes %q, want %q", got, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// An index going backwards under an Events stream means history the
// stream relied on is gone: ErrCompacted, then the channel closes.
func TestEventsIndexGoesBackwards(t *testing.T) {
	f := &fakeConsul{answers: []fakeAnswer{
		{index: 100, modify: 100, value: "v1"}, // Events' initial list
		{index: 50, modify: 50, value: "v1"},   // index went back
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := api.NewClient(&api.Config{Address: srv.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewFromClient(c, Config{SessionTTLMin: time.Second, LockTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	ch, err := s.Events(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var last kv.EventBatch
	for b := range ch {
		last = b
	}
	if !errors.Is(last.Err, kv.ErrCompacted) {
		t.Fatalf("last batch %+v, want ErrCompacted", last)
	}
}

// A lock whose session is destroyed by someone else is lost at once, and
// guarded writes through it are refused.
func TestLockLostWhenSessionDestroyed(t *testing.T) {
	srv := agent(t)
	s := openStore(t, testConfig(srv.Addr))
	defer func() { _ = s.Close() }()
	l, err := s.NewLock(t.Context(), "lost/lock", &kv.LockOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lost, err := l.Lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := s.kv.Get(s.lockKey("lost/lock"), nil)
	if err != nil || p == nil || p.Session == "" {
		t.Fatalf("lock key %+v, %v: want one held by a session", p, err)
	}
	other, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := other.Session().Destroy(p.Session, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(3 * time.Second):
		t.Fatal("lost channel still open 3s after the session was destroyed (TTL 10s)")
	}
	t.Logf("loss noticed after %v", time.Since(start))
	err = l.GuardedPut(t.Context(), "lost/x", []byte("v"), nil)
	if !errors.Is(err, kv.ErrNotLocked) && !errors.Is(err, kv.ErrLockLost) {
		t.Fatalf("GuardedPut after loss = %v, want ErrNotLocked or ErrLockLost", err)
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock after loss = %v, want nil", err)
	}
}

// With several addresses, an agent that cannot be reached is skipped.
func TestFailover(t *testing.T) {
	dead := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cfg := testConfig(agent(t).Addr)
	cfg.Addresses = []string{dead, cfg.Addresses[0]}
	s := openStore(t, cfg)
	defer func() { _ = s.Close() }()
	if err := s.Put(t.Context(), "failover/k", []byte("v"), nil); err != nil {
		t.Fatalf("Put through the second address: %v", err)
	}
	if got := s.transport.cur.Load(); got != 1 {
		t.Fatalf("current address index %d, want 1", got)
	}
}

// Values too large for a transaction still round-trip through Put, and
// replace a TTL key with a plain one.
func TestLargeValue(t *testing.T) {
	s := openStore(t, testConfig(agent(t).Addr))
	defer func() { _ = s.Close() }()
	ctx := t.Context()
	big := make([]byte, kv.MaxValueSize)
	if err := s.Put(ctx, "large/k", []byte("small"), &kv.WriteOptions{TTL: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "large/k", big, nil); err != nil {
		t.Fatalf("Put of %d bytes: %v", len(big), err)
	}
	p, _, err := s.kv.Get(s.consulKey("large/k"), nil)
	if err != nil || p == nil || len(p.Value) != len(big) || p.Session != "" {
		t.Fatalf("after Put: %v, session %q; want %d bytes and no session", err, p.Session, len(big))
	}
	if err := s.Put(ctx, "large/k", big, &kv.WriteOptions{TTL: 2 * time.Second}); !errors.Is(err, kv.ErrValueTooLarge) {
		t.Fatalf("TTL Put of %d bytes = %v, want ErrValueTooLarge", len(big), err)
	}
}

// With TLS set, the client speaks HTTPS and verifies the server with the
// given roots; without them the handshake fails.
func TestTLS(t *testing.T) {
	f := &fakeConsul{answers: []fakeAnswer{{index: 7, modify: 7, value: "over tls"}}}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	cfg := Config{
		Addresses:     []string{srv.Listener.Addr().String()},
		TLS:           &tls.Config{RootCAs: roots},
		SessionTTLMin: time.Second,
		LockTTL:       3 * time.Second,
	}
	s := openStore(t, cfg)
	defer func() { _ = s.Close() }()
	p, err := s.Get(t.Context(), "k", nil)
	if err != nil || string(p.Value) != "over tls" {
		t.Fatalf("Get over TLS = %+v, %v", p, err)
	}
	cfg.TLS = &tls.Config{RootCAs: x509.NewCertPool()}
	if _, err := New(t.Context(), cfg); !errors.Is(err, kv.ErrNotReachable) {
		t.Fatalf("New with untrusted server certificate = %v, want ErrNotReachable", err)
	}
}

// A killed client's watches end with ErrNotReachable, not ErrClosed: the
// store was cut off, nobody closed it.
func TestKillEndsWatches(t *testing.T) {
	s := openStore(t, testConfig(agent(t).Addr))
	ch, err := s.Watch(t.Context(), "kill/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		s.kill() // waits for the watch goroutine, which waits for us to read
	}()
	var last kv.KeyUpdate
	for u := range ch {
		last = u
	}
	<-killed
	if !errors.Is(last.Err, kv.ErrNotReachable) {
		t.Fatalf("last update %+v, want ErrNotReachable", last)
	}
	if err := s.Put(t.Context(), "kill/k", []byte("v"), nil); !errors.Is(err, kv.ErrNotReachable) {
		t.Fatalf("Put after kill = %v, want ErrNotReachable", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after kill = %v", err)
	}
}

// A connection blip shorter than RenewDeadline does not lose the lock; an
// outage longer than it does, by the deadline, before the server could
// have expired the session (TTL after the last renewal).
func TestLockRenewDeadline(t *testing.T) {
	s := openStore(t, testConfig(agent(t).Addr))
	defer func() { _ = s.Close() }()
	ttl, deadline := 3*time.Second, 2*time.Second
	// Renewals come every third of the session TTL (TTL/2).
	period := ttl / 6
	l, err := s.NewLock(t.Context(), "renew/lock", &kv.LockOptions{TTL: ttl, RenewDeadline: deadline})
	if err != nil {
		t.Fatal(err)
	}
	lost, err := l.Lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A blip across one renewal, over well before the deadline (retries
	// come every RenewDeadline/8 at most).
	s.transport.cut.Store(true)
	blip := time.NewTimer(period + 150*time.Millisecond)
	select {
	case <-lost:
		t.Fatal("lock lost during a blip shorter than RenewDeadline")
	case <-blip.C:
	}
	s.transport.cut.Store(false)
	ok := time.NewTimer(2 * period)
	select {
	case <-lost:
		t.Fatal("lock lost after the connection came back")
	case <-ok.C:
	}
	// An outage: lost within RenewDeadline of the last renewal, which
	// came at most a period before the cut.
	s.transport.cut.Store(true)
	start := time.Now()
	select {
	case <-lost:
	case <-time.After(deadline + 500*time.Millisecond):
		t.Fatalf("lock not lost %v into an outage (RenewDeadline %v)", time.Since(start), deadline)
	}
	if d := time.Since(start); d >= ttl-period {
		t.Fatalf("loss declared %v into the outage: not before the earliest expiry, TTL %v after the last renewal", d, ttl)
	}
	s.transport.cut.Store(false)
	if tok := l.Token(); tok != 0 {
		t.Fatalf("Token after loss = %d, want 0", tok)
	}
}

// Datacenter is sent with every request: the dev agent's own "dc1" works,
// an unknown one is refused by the agent.
func TestDatacenter(t *testing.T) {
	cfg := testConfig(agent(t).Addr)
	cfg.Datacenter = "dc1"
	s := openStore(t, cfg)
	defer func() { _ = s.Close() }()
	if err := s.Put(t.Context(), "dc/k", []byte("v"), nil); err != nil {
		t.Fatalf("Put in dc1: %v", err)
	}
	cfg.Datacenter = "nowhere"
	if _, err := New(t.Context(), cfg); err == nil {
		t.Fatal("New with an unknown datacenter succeeded")
	}
}

// New's errors say what is wrong and where (first hour review of New).
func TestNewSaysWhatIsWrong(t *testing.T) {
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := dead.Listener.Addr().String()
	dead.Close()
	for _, tc := range []struct {
		name string
		addr string
		ctx  time.Duration
		want []error
		says string
	}{
		{"typo'd scheme", "htp://" + deadAddr, 5 * time.Second, []error{ErrInvalidConfig}, "scheme"},
		{"dead port", deadAddr, 5 * time.Second, []error{kv.ErrNotReachable}, "connection refused"},
		{"not consul", web.Listener.Addr().String(), 5 * time.Second, []error{kv.ErrNotReachable}, "Consul"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), tc.ctx)
			defer cancel()
			s, err := New(ctx, Config{Addresses: []string{tc.addr}})
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("New: %v; want it to match %v", err, w)
				}
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("New: %q; want it to say %q", err, tc.says)
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}
