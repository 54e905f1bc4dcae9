package election_test

import (
	"context"
	"errors"
	"strings"
	"testing"
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

func TestElectionSuiteOnMemory(t *testing.T) {
	electiontest.Run(t, memoryHarness(t))
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
		{"negative TTL", election.Config{Key: "e", Identity: "a", TTL: -time.Second}, "TTL -1s is negative", kv.ErrInvalidTTL},
		{"renew deadline not below TTL", election.Config{Key: "e", Identity: "a", TTL: time.Second, RenewDeadline: time.Second}, "RenewDeadline 1s must be positive and below TTL 1s", kv.ErrInvalidTTL},
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
	if err := e.Run(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run = %v, want an 'already running' error", err)
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
