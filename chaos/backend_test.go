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

// server is one backend server, or a 3-member cluster of them, each
// member an OS process of its own.
type server struct {
	backend string
	members []member
	client  clientConfig // every member
	// leader is the member the cluster says leads (-1: none known); nil
	// for a single server.
	leader func(ctx context.Context) int
	// healthy reports whether the cluster has caught up after a fault and
	// can lose a member; nil: whenever every member runs and one leads.
	healthy func(ctx context.Context) bool
}

// member is one server process.
type member struct {
	name    string
	proc    *testenv.Process
	restart func(ctx context.Context) error
}

// clusterSize is the size of the clusters of the cluster scenarios.
const clusterSize = 3

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
		return &server{backend: backend, members: []member{{m.Name, m.Process, m.Start}},
			client: clientConfig{Backend: backend, Endpoints: m.Endpoints()}}
	case "zookeeper":
		z := testenv.ZooKeeper(t)
		return &server{backend: backend, members: []member{{z.Addr, z.Process(), z.Restart}},
			client: clientConfig{Backend: backend, Endpoints: z.Servers()}}
	case "consul":
		c := testenv.Consul(t, testenv.ConsulOptions{Persistent: true})
		return &server{backend: backend, members: []member{{c.Addr, c.Process(), c.Restart}},
			client: clientConfig{Backend: backend, Endpoints: []string{c.Addr}}}
	}
	t.Fatalf("unknown backend %q", backend)
	return nil
}

// startCluster starts a clusterSize-member cluster of backend, members
// killed at the end of the test. Its client config names every member.
func startCluster(t *testing.T, backend string) *server {
	t.Helper()
	srv := &server{backend: backend, client: clientConfig{Backend: backend}}
	switch backend {
	case "etcd":
		ms := testenv.EtcdCluster(t, clusterSize)
		for _, m := range ms {
			srv.members = append(srv.members, member{m.Name, m.Process, m.Start})
			srv.client.Endpoints = append(srv.client.Endpoints, m.ClientURL)
		}
		srv.leader = func(ctx context.Context) int { return testenv.EtcdLeader(ctx, ms) }
	case "zookeeper":
		ens := testenv.ZooKeeperEnsemble(t, clusterSize)
		for _, z := range ens {
			srv.members = append(srv.members, member{z.Addr, z.Process(), z.Restart})
		}
		srv.client.Endpoints = ens.Servers()
		srv.leader = func(context.Context) int { return ens.Leader() }
	case "consul":
		cs := testenv.ConsulCluster(t, clusterSize, testenv.ConsulOptions{})
		for _, c := range cs {
			srv.members = append(srv.members, member{c.Addr, c.Process(), c.Restart})
		}
		srv.client.Endpoints = cs.Addrs()
		srv.leader = cs.Leader
		// A Consul server back from a restart needs a while before the
		// cluster can lose another: killing the leader before that has
		// left it without a leader for 25 s.
		srv.healthy = cs.Healthy
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	return srv
}

// clientFor is the client config of client i of a cluster: every member,
// the list rotated by i so that clients spread over members (Consul's
// client, and etcd's at first, use the first one that answers).
func (s *server) clientFor(i int) clientConfig {
	eps := s.client.Endpoints
	k := i % len(eps)
	return clientConfig{Backend: s.backend, Endpoints: append(append([]string(nil), eps[k:]...), eps[:k]...)}
}

// storeLeader waits up to 30 s for the cluster to be healthy and name a
// leader, and returns its index: the next fault finds a cluster that can
// lose a member.
func (s *server) storeLeader(t *testing.T) int {
	t.Helper()
	if s.leader == nil {
		return 0
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		i := s.leader(ctx)
		ok := i >= 0 && (s.healthy == nil || s.healthy(ctx))
		cancel()
		if ok {
			return i
		}
		pause(50 * time.Millisecond) // polling the cluster's status
	}
	t.Fatalf("%s cluster: no healthy cluster with a leader within 30s", s.backend)
	return -1
}

// bounceMember kills member i (SIGKILL) and starts it again after down,
// on its data, waiting until it serves.
func (s *server) bounceMember(t *testing.T, tl *timeline, i int, down time.Duration) {
	t.Helper()
	m := s.members[i]
	tl.say("FAULT  kill %s member %s (pid %d), down for %v", s.backend, m.name, m.proc.PID(), down)
	m.proc.Kill()
	pause(down)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.restart(ctx); err != nil {
		t.Fatalf("restart %s member %s: %v", s.backend, m.name, err)
	}
	tl.say("       %s member %s back (pid %d)", s.backend, m.name, m.proc.PID())
}

// bounce kills the server (SIGKILL) and starts it again after down,
// waiting until it serves; it returns when the server is back.
func (s *server) bounce(t *testing.T, tl *timeline, down time.Duration) {
	t.Helper()
	s.bounceMember(t, tl, 0, down)
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
