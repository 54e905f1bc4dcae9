package election_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/election/electiontest"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
	"github.com/regentkv/regent/kv/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func memoryHarness(t *testing.T) electiontest.Harness {
	b := memory.NewBackend()
	t.Cleanup(b.Close)
	return electiontest.Harness{
		Harness: kvtest.Harness{
			Name:     "memory",
			New:      func(testing.TB) kv.Store { return b.Client() },
			Kill:     func(_ testing.TB, s kv.Store) { s.(*memory.Store).Kill() },
			MinTTL:   memory.MinTTL,
			TTLSlack: 50 * time.Millisecond,
		},
		TTL: 2 * time.Second,
		// A killed memory client is cut off from its backend, which keeps
		// its locks until their TTL runs out: exactly a partition.
		Cut: func(_ testing.TB, s kv.Store) { s.(*memory.Store).Kill() },
	}
}

// The suite runs in a testing/synctest bubble: the memory backend's TTLs
// and the electors' renewals run on the bubble's fake time, so a
// failover that waits out a 2 s TTL takes no wall time at all.
func TestElectionSuiteOnMemory(t *testing.T) {
	for _, c := range electiontest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { c.Run(t, memoryHarness(t)) })
		})
	}
}

func TestConfigValidation(t *testing.T) {
	b := memory.NewBackend()
	defer b.Close()
	s := b.Client()
	defer func() { _ = s.Close() }()
	for _, tc := range []struct {
		name     string
		cfg      election.Config
		want     string
		sentinel error
	}{
		{"no key", election.Config{Identity: "a"}, "Key", kv.ErrInvalidKey},
		{"bad key", election.Config{Key: "a//b", Identity: "a"}, "Key", kv.ErrInvalidKey},
		{"no identity", election.Config{Key: "e"}, "Identity is required", nil},
		{"negative TTL", election.Config{Key: "e", Identity: "a", TTL: -time.Second}, "kv: invalid TTL -1s: TTL and RenewDeadline (0s) must not be negative", kv.ErrInvalidTTL},
		{"renew deadline not below TTL", election.Config{Key: "e", Identity: "a", TTL: time.Second, RenewDeadline: time.Second}, "RenewDeadline 1s must be below the TTL", kv.ErrInvalidTTL},
		{"negative health timeout", election.Config{Key: "e", Identity: "a", HealthTimeout: -time.Second}, "HealthTimeout", nil},
		{"backoff disordered", election.Config{Key: "e", Identity: "a", RetryInterval: time.Second, MaxRetryInterval: time.Millisecond}, "RetryInterval", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := election.New(context.Background(), s, tc.cfg)
			if !errors.Is(err, election.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%+v) error = %v; want an ErrInvalidConfig mentioning %q", tc.cfg, err, tc.want)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("New(%+v) error = %v; want it to match %v too", tc.cfg, err, tc.sentinel)
			}
		})
	}
	if _, err := election.New(context.Background(), nil, election.Config{Key: "e", Identity: "a"}); !errors.Is(err, election.ErrInvalidConfig) {
		t.Errorf("New with a nil store: %v, want ErrInvalidConfig", err)
	}
}

func TestRunTwiceAndMetrics(t *testing.T) {
	b := memory.NewBackend()
	defer b.Close()
	s := b.Client()
	defer func() { _ = s.Close() }()
	metrics := election.NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics)
	leading := make(chan struct{})
	e, err := election.New(context.Background(), s, election.Config{Key: "m", Identity: "a", Metrics: metrics,
		Callbacks: election.Callbacks{OnStartedLeading: func(ctx context.Context) { close(leading); <-ctx.Done() }}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	<-leading
	if err := e.Run(ctx); !errors.Is(err, election.ErrAlreadyRunning) {
		t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
	}
	const leadingWant = `
# HELP regent_election_is_leader 1 while this process is the leader of the election, else 0.
# TYPE regent_election_is_leader gauge
regent_election_is_leader{election="m"} 1
# HELP regent_election_leader_transitions_total Times this process became the leader of the election.
# TYPE regent_election_leader_transitions_total counter
regent_election_leader_transitions_total{election="m"} 1
`
	if err := testutil.CollectAndCompare(metrics, strings.NewReader(leadingWant)); err != nil {
		t.Error(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	const want = `
# HELP regent_election_is_leader 1 while this process is the leader of the election, else 0.
# TYPE regent_election_is_leader gauge
regent_election_is_leader{election="m"} 0
`
	if err := testutil.CollectAndCompare(metrics, strings.NewReader(want), "regent_election_is_leader"); err != nil {
		t.Error(err)
	}
	if _, err := e.Leader(context.Background()); !errors.Is(err, election.ErrNoLeader) {
		t.Errorf("Leader after release = %v, want ErrNoLeader", err)
	}
}

// Resign from inside OnStartedLeading, with the term's ctx, ends the term
// and returns at once (first hour: it blocked for the HealthTimeout, 10 s,
// since the release waits for OnStartedLeading to return); the release
// follows when the callback returns, and another candidate takes over.
func TestResignFromInsideTheTerm(t *testing.T) {
	b := memory.NewBackend()
	defer b.Close()
	s := b.Client()
	defer func() { _ = s.Close() }()
	resigned := make(chan error, 1)
	var once sync.Once
	var e *election.Elector
	e, err := election.New(context.Background(), s, election.Config{Key: "inside", Identity: "a",
		Callbacks: election.Callbacks{OnStartedLeading: func(ctx context.Context) {
			once.Do(func() {
				start := time.Now()
				err := e.Resign(ctx)
				switch {
				case err != nil:
				case time.Since(start) > time.Second:
					err = fmt.Errorf("Resign from inside the term took %v, want it to return at once", time.Since(start))
				case ctx.Err() == nil:
					err = errors.New("the term's ctx is not cancelled when Resign returns")
				}
				resigned <- err
			})
			<-ctx.Done()
		}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	select {
	case err := <-resigned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Resign from inside OnStartedLeading still blocked after 5s")
	}
	// Released: another candidate leads.
	bLeads := make(chan struct{})
	other, err := election.New(context.Background(), s, election.Config{Key: "inside", Identity: "b",
		Callbacks: election.Callbacks{OnStartedLeading: func(ctx context.Context) { close(bLeads); <-ctx.Done() }}})
	if err != nil {
		t.Fatal(err)
	}
	octx, ocancel := context.WithCancel(context.Background())
	odone := make(chan error, 1)
	go func() { odone <- other.Run(octx) }()
	select {
	case <-bLeads:
	case <-time.After(10 * time.Second):
		t.Fatal("no other candidate took over within 10s of the resignation")
	}
	ocancel()
	if err := <-odone; err != nil {
		t.Errorf("the other candidate's Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// recordFailingStore fails the first fail guarded writes of its locks: the
// leader record's.
type recordFailingStore struct {
	kv.Store
	fail atomic.Int32
	gate chan struct{} // a failing write waits for it
	err  error         // what it fails with; errRecordInjected if nil
}

var errRecordInjected = errors.New("injected: record write refused")

func (s *recordFailingStore) NewLock(ctx context.Context, key string, opts *kv.LockOptions) (kv.Locker, error) {
	l, err := s.Store.NewLock(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	return &recordFailingLocker{Locker: l, s: s}, nil
}

type recordFailingLocker struct {
	kv.Locker
	s *recordFailingStore
}

func (l *recordFailingLocker) GuardedPut(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	if l.s.fail.Add(-1) >= 0 {
		<-l.s.gate
		if l.s.err != nil {
			return l.s.err
		}
		return errRecordInjected
	}
	return l.Locker.GuardedPut(ctx, key, value, opts)
}

// The leader record is written beside OnStartedLeading: Leader() of the
// leader answers from its term at once; a record write that fails ends the
// term (its ctx says why), and Run campaigns again after a backoff, whose
// term writes the record.
func TestLeaderRecordWrittenBesideTheTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBackend()
		defer b.Close()
		s := &recordFailingStore{Store: b.Client(), gate: make(chan struct{})}
		defer func() { _ = s.Close() }()
		s.fail.Store(1)
		type ended struct {
			cause    error
			asLeader election.Leader
		}
		terms := make(chan ended, 4)
		var once sync.Once
		var e *election.Elector
		e, err := election.New(context.Background(), s, election.Config{Key: "rec", Identity: "a",
			Callbacks: election.Callbacks{OnStartedLeading: func(ctx context.Context) {
				l, lerr := e.Leader(ctx)
				if lerr != nil {
					t.Errorf("Leader() inside the term: %v", lerr)
				}
				once.Do(func() { close(s.gate) }) // now the first record write fails
				<-ctx.Done()
				terms <- ended{context.Cause(ctx), l}
			}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		first := <-terms
		if !errors.Is(first.cause, errRecordInjected) {
			t.Fatalf("first term ended by %v, want the record write's error", first.cause)
		}
		if first.asLeader.Identity != "a" {
			t.Fatalf("Leader() inside the term = %+v, want a", first.asLeader)
		}
		time.Sleep(10 * time.Second) // past Run's backoff
		synctest.Wait()              // the second term is running, its record written
		l, err := election.LeaderOf(context.Background(), s, "rec")
		if err != nil || l.Identity != "a" {
			t.Fatalf("record after the second term began: %+v, %v; want a", l, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if second := <-terms; !errors.Is(second.cause, context.Canceled) {
			t.Fatalf("second term ended by %v, want Run's ctx", second.cause)
		}
	})
}

// A record write refused because the lock is gone ends the term as lost,
// not as a failed write: Run campaigns again at once, without a backoff.
func TestLeaderRecordRefusedAsLockLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBackend()
		defer b.Close()
		gate := make(chan struct{})
		close(gate)
		s := &recordFailingStore{Store: b.Client(), gate: gate, err: fmt.Errorf("injected: %w", kv.ErrLockLost)}
		defer func() { _ = s.Close() }()
		s.fail.Store(1)
		type began struct {
			at    time.Time
			cause error
		}
		terms := make(chan began, 4)
		e, err := election.New(context.Background(), s, election.Config{Key: "lost", Identity: "a",
			RetryInterval: time.Second, MaxRetryInterval: time.Second,
			Callbacks: election.Callbacks{OnStartedLeading: func(ctx context.Context) {
				at := time.Now()
				<-ctx.Done()
				terms <- began{at, context.Cause(ctx)}
			}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		first := <-terms
		if !errors.Is(first.cause, kv.ErrLockLost) {
			t.Fatalf("first term ended by %v, want kv.ErrLockLost", first.cause)
		}
		for !e.IsLeader() {
			time.Sleep(time.Millisecond)
		}
		if waited := time.Since(first.at); waited >= time.Second {
			t.Fatalf("second term began %v after the first: Run backed off", waited)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		<-terms
	})
}
