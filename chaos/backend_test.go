//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/consul"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/zookeeper"
)

// Timing of the scenarios: short TTLs, so that failovers fit many times in
// a bounded run, and the same on every backend.
const (
	// electionTTL is the election TTL: etcd's lease floor, the ZooKeeper
	// session timeout, twice Consul's session_ttl_min of the test agent.
	electionTTL = 2 * time.Second
	// opTimeout bounds each store call of a scenario.
	opTimeout = 2 * time.Second
)

// server is one backend server, running as an OS process of its own.
type server struct {
	backend string
	proc    *testenv.Process
	restart func(ctx context.Context) error
	client  clientConfig
}

// clientConfig says how to open a client of a server; candidate processes
// get it as their arguments.
type clientConfig struct {
	Backend   string
	Endpoints []string
}

// backends are the ones the scenarios run on, in -chaos.backends order.
func backends(t *testing.T) []string {
	var out []string
	for _, b := range []string{"etcd", "zookeeper", "consul"} {
		if wantBackend(b) {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		t.Fatalf("-chaos.backends=%q names no backend (etcd, zookeeper, consul)", *backendsFlag)
	}
	return out
}

// startServer starts a server of backend as a process, killed at the end
// of the test.
func startServer(t *testing.T, backend string) *server {
	t.Helper()
	switch backend {
	case "etcd":
		m := testenv.EtcdProcess(t)
		return &server{backend: backend, proc: m.Process, restart: m.Start,
			client: clientConfig{Backend: backend, Endpoints: m.Endpoints()}}
	case "zookeeper":
		z := testenv.ZooKeeper(t)
		return &server{backend: backend, proc: z.Process(), restart: z.Restart,
			client: clientConfig{Backend: backend, Endpoints: z.Servers()}}
	case "consul":
		c := testenv.Consul(t, testenv.ConsulOptions{Persistent: true})
		return &server{backend: backend, proc: c.Process(), restart: c.Restart,
			client: clientConfig{Backend: backend, Endpoints: []string{c.Addr}}}
	}
	t.Fatalf("unknown backend %q", backend)
	return nil
}

// bounce kills the server (SIGKILL) and starts it again after down,
// waiting until it serves; it returns when the server is back.
func (s *server) bounce(t *testing.T, tl *timeline, down time.Duration) {
	t.Helper()
	tl.say("FAULT  kill the %s server (pid %d), down for %v", s.backend, s.proc.PID(), down)
	s.proc.Kill()
	pause(down)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.restart(ctx); err != nil {
		t.Fatalf("restart %s: %v", s.backend, err)
	}
	tl.say("       %s server back (pid %d)", s.backend, s.proc.PID())
}

// open opens a client of the server, retrying while it is unreachable
// (a candidate may start while the server restarts) until ctx ends.
func (c clientConfig) open(ctx context.Context, log *zap.Logger) (kv.Store, error) {
	for {
		s, err := c.openOnce(ctx, log)
		if err == nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open %s %v: %w (last error: %w)", c.Backend, c.Endpoints, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond): // retry interval
		}
	}
}

func (c clientConfig) openOnce(ctx context.Context, log *zap.Logger) (kv.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch c.Backend {
	case "etcd":
		return etcd.New(ctx, etcd.Config{Endpoints: c.Endpoints, Logger: log})
	case "zookeeper":
		return zookeeper.New(ctx, zookeeper.Config{Servers: c.Endpoints, SessionTimeout: electionTTL, Logger: log})
	case "consul":
		return consul.New(ctx, consul.Config{Addresses: c.Endpoints, SessionTTLMin: time.Second, LockTTL: electionTTL, Logger: log})
	}
	return nil, fmt.Errorf("unknown backend %q", c.Backend)
}
