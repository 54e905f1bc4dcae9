package embedded_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/regentkv/regent/kv/etcd/embedded"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newClient(t *testing.T, s *embedded.Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestStartServesAndCloseRemovesTempDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := embedded.Start(ctx)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := newClient(t, s)
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	dir := s.DataDir()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp data dir %s still there after Close (stat err %v)", dir, err)
	}
	if err := s.Restart(ctx); !errors.Is(err, embedded.ErrClosed) {
		t.Errorf("Restart after Close: got %v, want ErrClosed", err)
	}
}

func TestRestartKeepsDataAndEndpoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	s, err := embedded.Start(ctx, embedded.WithDataDir(dir), embedded.WithUnsafeNoFsync())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer func() { _ = s.Close() }()
	eps := s.Endpoints()
	c := newClient(t, s)
	if _, err := c.Put(ctx, "k", "before"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	s.Stop()
	s.Stop() // idempotent
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if got := s.Endpoints(); got[0] != eps[0] {
		t.Errorf("endpoints changed across restart: got %v, want %v", got, eps)
	}
	// The old client reconnects by itself.
	resp, err := c.Get(ctx, "k")
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "before" {
		t.Errorf("after restart got %v, want k=before", resp.Kvs)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("given data dir removed by Close: %v", err)
	}
}

func TestStartHonoursCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := embedded.Start(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled ctx: got (%v, %v), want context.Canceled", s, err)
	}
}
