package consul

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
)

// TestKeepAliveRestoredAfterSessionLoss: a Store cut off from Consul for
// longer than a KeepAlive TTL loses the session and its keys; once it
// reaches Consul again it writes them back on a new session, by itself, as
// the etcd and ZooKeeper drivers do. A key someone else wrote meanwhile
// stays theirs, a key deleted before the loss is not resurrected, and a key
// written under a lock is never restored.
func TestKeepAliveRestoredAfterSessionLoss(t *testing.T) {
	srv := agent(t)
	px := testenv.NewProxy(t, srv.Addr)
	s := openStore(t, testConfig(px.Addr()))
	defer func() { _ = s.Close() }()
	admin := openStore(t, testConfig(srv.Addr))
	defer func() { _ = admin.Close() }()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ka := &kv.WriteOptions{TTL: testMinTTL, KeepAlive: true}
	for _, k := range []string{"ka/mine", "ka/taken", "ka/deleted"} {
		if err := s.Put(ctx, k, []byte("v1"), ka); err != nil {
			t.Fatalf("Put %s: %v", k, err)
		}
	}
	if err := s.Delete(ctx, "ka/deleted"); err != nil {
		t.Fatal(err)
	}
	l, err := s.NewLock(ctx, "ka-lock", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.GuardedPut(ctx, "ka/guarded", []byte("g"), ka); err != nil {
		t.Fatalf("GuardedPut: %v", err)
	}
	exists := func(k string) bool {
		ok, err := admin.Exists(ctx, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	px.Cut()
	poll.Until(t, 3*testMinTTL+5*time.Second, "KeepAlive keys of the cut-off Store did not expire", func() bool {
		return !exists("ka/mine") && !exists("ka/taken") && !exists("ka/guarded")
	})
	if err := admin.Put(ctx, "ka/taken", []byte("theirs"), nil); err != nil {
		t.Fatal(err)
	}
	px.Heal()
	poll.Until(t, 20*time.Second, "KeepAlive key not restored after the partition", func() bool { return exists("ka/mine") })
	if p, err := admin.Get(ctx, "ka/mine", nil); err != nil || string(p.Value) != "v1" {
		t.Fatalf("restored key: %v, %v; want v1", p, err)
	}
	if p, err := admin.Get(ctx, "ka/taken", nil); err != nil || string(p.Value) != "theirs" {
		t.Fatalf("key written by another client during the partition: %v, %v; want theirs", p, err)
	}
	for _, k := range []string{"ka/deleted", "ka/guarded"} {
		if exists(k) {
			t.Errorf("%s restored", k)
		}
	}
	// The restored key is KeepAlive again: it goes when the Store closes.
	_ = l.Unlock(ctx)
	if err := s.Close(); err != nil && !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("Close: %v", err)
	}
	poll.Until(t, 2*testMinTTL, "restored key outlived its Store", func() bool { return !exists("ka/mine") })
}
