package consul

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
)

// One agent serves the package's tests; tests that must stop an agent start
// their own.
var (
	sharedOnce sync.Once
	shared     *testenv.ConsulServer
	sharedErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// agent returns the package's shared agent, starting it on first use.
func agent(t testing.TB) *testenv.ConsulServer {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = testenv.StartConsul(testenv.ConsulOptions{}) })
	if errors.Is(sharedErr, testenv.ErrConsulMissing) {
		testenv.Missing(t, "consul "+testenv.ConsulVersion, testenv.ConsulHowToGet)
	}
	if sharedErr != nil {
		t.Fatalf("consul: %v", sharedErr)
	}
	return shared
}

// testConfig is the configuration tests use against an agent started with
// session_ttl_min = "1s": the smallest user TTL is then testMinTTL.
func testConfig(addr string) Config {
	return Config{
		Addresses:     []string{addr},
		SessionTTLMin: time.Second,
		LockTTL:       3 * time.Second,
	}
}

// testMinTTL is the smallest TTL of a Store with testConfig.
const testMinTTL = 2 * time.Second

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := agent(t)
	kvtest.Run(t, kvtest.Harness{
		Name: "consul",
		New: func(t testing.TB) kv.Store {
			return openStore(t, testConfig(srv.Addr))
		},
		Kill: func(t testing.TB, s kv.Store) { s.(*Store).kill() },
		// Consul keeps no history: its events come from diffing listings,
		// so a resume from an old revision may report ErrCompacted, and
		// changes faster than one blocking query merge into the latest.
		StreamNoHistory: true,
		Compact: func(t testing.TB, s kv.Store, rev uint64) {
			s.(*Store).compact(rev)
		},
		MinTTL: testMinTTL,
		// A session is invalidated by a timer on the leader, TTL after
		// its creation or last renewal, then its keys go in one raft
		// apply: late by milliseconds on an idle dev agent.
		TTLSlack: 500 * time.Millisecond,
	})
}
