package testenv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/internal/testenv"
)

// Every backend runs as a 3-member cluster whose leader the test can find
// through the backend's own API, kill and restart on its data, while a
// client given every member keeps working.

func TestEtcdClusterLeaderLoss(t *testing.T) {
	members := testenv.EtcdCluster(t, 3)
	var eps []string
	for _, m := range members {
		eps = append(eps, m.ClientURL)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx := t.Context()
	leader := waitLeader(t, func() int { return testenv.EtcdLeader(ctx, members) })
	members[leader].Kill()
	waitNewLeader(t, func() int { return testenv.EtcdLeader(ctx, members) }, leader)
	poll.Until(t, 20*time.Second, "no write through the client after the leader died", func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := c.Put(pctx, "k", "v")
		return err == nil
	})
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := members[leader].Start(sctx); err != nil {
		t.Fatalf("restart member %d: %v", leader, err)
	}
}

func TestZooKeeperEnsembleLeaderLoss(t *testing.T) {
	ens := testenv.ZooKeeperEnsemble(t, 3)
	conn, _, err := zk.Connect(ens.Servers(), 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leader := waitLeader(t, ens.Leader)
	followers := 0
	for _, m := range ens {
		if m.Mode() == "follower" {
			followers++
		}
	}
	if followers != 2 {
		t.Fatalf("%d followers, want 2", followers)
	}
	ens[leader].Process().Kill()
	waitNewLeader(t, ens.Leader, leader)
	poll.Until(t, 20*time.Second, "no write through the client after the leader died", func() bool {
		_, err := conn.Create("/k", nil, 0, zk.WorldACL(zk.PermAll))
		return err == nil || errors.Is(err, zk.ErrNodeExists)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := ens[leader].Restart(ctx); err != nil {
		t.Fatalf("restart member %d: %v", leader, err)
	}
	if m := ens[leader].Mode(); m != "follower" {
		t.Fatalf("restarted member is %q, want follower", m)
	}
}

func TestConsulClusterLeaderLoss(t *testing.T) {
	servers := testenv.ConsulCluster(t, 3, testenv.ConsulOptions{})
	ctx := t.Context()
	leader := waitLeader(t, func() int { return servers.Leader(ctx) })
	servers[leader].Process().Kill()
	next := waitNewLeader(t, func() int { return servers.Leader(ctx) }, leader)
	c, err := api.NewClient(&api.Config{Address: servers[next].Addr})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "no write after the leader died", func() bool {
		_, err := c.KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil)
		return err == nil
	})
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := servers[leader].Restart(rctx); err != nil {
		t.Fatalf("restart server %d: %v", leader, err)
	}
	back, err := api.NewClient(&api.Config{Address: servers[leader].Addr})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := back.KV().Get("k", &api.QueryOptions{RequireConsistent: true})
	if err != nil || p == nil || string(p.Value) != "v" {
		t.Fatalf("consistent Get through the restarted server: %v, %v", p, err)
	}
}

// waitLeader waits until leader reports a member, and returns it.
func waitLeader(t *testing.T, leader func() int) int {
	t.Helper()
	i := -1
	poll.Until(t, 30*time.Second, "no cluster leader", func() bool { i = leader(); return i >= 0 })
	return i
}

// waitNewLeader waits until leader reports a member other than old (which
// the others report as leader until they notice it is gone).
func waitNewLeader(t *testing.T, leader func() int, old int) int {
	t.Helper()
	i := -1
	poll.Until(t, 30*time.Second, "no new cluster leader", func() bool { i = leader(); return i >= 0 && i != old })
	return i
}
