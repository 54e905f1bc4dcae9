package testenv_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/internal/testenv"
)

func TestEtcdServesClients(t *testing.T) {
	eps := testenv.Etcd(t)
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("clientv3.New(%v): %v", eps, err)
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "testenv/k", "v"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	resp, err := c.Get(ctx, "testenv/k")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Errorf("Get: got %v, want testenv/k=v", resp.Kvs)
	}
}
