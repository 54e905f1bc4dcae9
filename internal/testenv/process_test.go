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

	"github.com/regentkv/regent/internal/testenv"
)

// Each server a fault test needs runs as a process of its own, which the
// test can SIGKILL, SIGSTOP and SIGCONT, and start again on the same data.

func TestEtcdProcessKillPauseRestart(t *testing.T) {
	m := testenv.EtcdProcess(t)
	c, err := clientv3.New(clientv3.Config{Endpoints: m.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx := t.Context()
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	pid := m.PID()
	if pid == 0 {
		t.Fatal("no pid for a running member")
	}

	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = c.Get(pctx, "k")
	cancel()
	if err == nil {
		t.Fatal("a paused server answered")
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatalf("Get after resume: %v", err)
	}

	m.Kill()
	if m.Running() {
		t.Fatal("member still running after Kill")
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := m.Start(sctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if m.PID() == pid {
		t.Fatal("same pid after a restart")
	}
	resp, err := c.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("Get after restart: %v, %v; want k=v kept on disk", resp, err)
	}
	if err := m.Terminate(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v, want a clean exit", err)
	}
}

func TestZooKeeperPauseResume(t *testing.T) {
	srv := testenv.ZooKeeper(t)
	conn, _, err := zk.Connect(srv.Servers(), 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Create("/p", []byte("v"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	p := srv.Process()
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if !p.Paused() {
		t.Fatal("Paused() false after Pause")
	}
	res := make(chan error, 1)
	go func() { _, _, err := conn.Get("/p"); res <- err }()
	select {
	case err := <-res:
		t.Fatalf("a paused server answered: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if err != nil && !errors.Is(err, zk.ErrConnectionClosed) {
			t.Fatalf("Get across the pause: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer 10s after resume")
	}
}

func TestConsulPersistentRestartKeepsData(t *testing.T) {
	srv := testenv.Consul(t, testenv.ConsulOptions{Persistent: true})
	c, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	srv.Process().Kill()
	if _, _, err := c.KV().Get("k", nil); err == nil {
		t.Fatal("a killed agent answered")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	p, _, err := c.KV().Get("k", nil)
	if err != nil || p == nil || string(p.Value) != "v" {
		t.Fatalf("Get after restart: %v, %v; want k=v kept on disk", p, err)
	}
}
