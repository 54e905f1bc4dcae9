package consul

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

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

// TestKeepAliveRestoreLeavesKeysOfTheNewSession: a restore after the loss
// of session S1 must touch only the keys that were on S1. A key this Store
// wrote on the session that replaced it (S2) exists and is ours: the
// restore must not read its presence as "someone else's" and forget it,
// or a later loss of S2 would not bring it back.
func TestKeepAliveRestoreLeavesKeysOfTheNewSession(t *testing.T) {
	s, ctx, ka, s1 := storeWithKeepAliveKey(t, "ka2/old", "o")
	// S1 is lost as far as the Store knows (no restore started yet), and
	// the next KeepAlive write gets S2.
	s.sessions.drop(testMinTTL, s1)
	if err := s.Put(ctx, "ka2/new", []byte("n"), ka); err != nil {
		t.Fatal(err)
	}
	s2, err := s.sessions.get(ctx, testMinTTL)
	if err != nil || s2 == s1 {
		t.Fatalf("second session %q, %v; want a new one", s2, err)
	}
	s.sessions.restore(testMinTTL, s1)
	// Now S2 is lost as well: both keys must come back on S3.
	s.sessions.drop(testMinTTL, s2)
	s.sessions.restore(testMinTTL, s2)
	for _, k := range []string{"ka2/old", "ka2/new"} {
		if ok, err := s.Exists(ctx, k, nil); err != nil || !ok {
			t.Errorf("%s after the loss of both sessions: exists %v, %v; want restored", k, ok, err)
		}
	}
}

// TestKeepAliveRestoredAfterLossFoundByAWrite: when a KeepAlive write is
// the first to find its session gone (the server invalidated it), the
// other keys of that session are restored too, as when the renewer finds
// the loss.
func TestKeepAliveRestoredAfterLossFoundByAWrite(t *testing.T) {
	s, ctx, ka, s1 := storeWithKeepAliveKey(t, "ka3/a", "a")
	// Invalidate S1 on the server behind the renewer's back, then write
	// before the renewer's next round (a sixth of the TTL away).
	if _, err := s.client.Session().Destroy(s1, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "ka3/b", []byte("b"), ka); err != nil {
		t.Fatalf("Put after the session was invalidated: %v", err)
	}
	poll.Until(t, 10*time.Second, "ka3/a not restored after its session was lost", func() bool {
		ok, err := s.Exists(ctx, "ka3/a", nil)
		return err == nil && ok
	})
}

// TestTTLWriteOntoAKeyInLockDelay: a TTL write refused because the key is
// in another session's lock-delay says so, and does not take the Store's
// own KeepAlive session for lost (which would drop its other keys).
func TestTTLWriteOntoAKeyInLockDelay(t *testing.T) {
	s, ctx, ka, s1 := storeWithKeepAliveKey(t, "ka4/mine", "m")
	// Another client locks ka4/delayed with a session of lock-delay 30 s
	// and destroys it: the key is then in lock-delay for 30 s.
	other, _, err := s.client.Session().CreateNoChecks(&api.SessionEntry{LockDelay: 30 * time.Second, TTL: "10s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A key of its own per run: the lock-delay outlasts the test.
	delayed := fmt.Sprintf("ka4/delayed-%d", time.Now().UnixNano())
	ck := s.consulKey(delayed)
	if ok, _, err := s.client.KV().Acquire(&api.KVPair{Key: ck, Session: other}, nil); err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	if _, err := s.client.Session().Destroy(other, nil); err != nil {
		t.Fatal(err)
	}
	err = s.Put(ctx, delayed, []byte("x"), ka)
	if !errors.Is(err, kv.ErrLockHeld) || !strings.Contains(err.Error(), "lock-delay") {
		t.Fatalf("Put onto a key in lock-delay: %v; want kv.ErrLockHeld saying so", err)
	}
	if s2, err := s.sessions.get(ctx, testMinTTL); err != nil || s2 != s1 {
		t.Errorf("KeepAlive session after the refused write: %q, %v; want %q kept", s2, err, s1)
	}
	if ok, err := s.Exists(ctx, "ka4/mine", nil); err != nil || !ok {
		t.Errorf("ka4/mine after the refused write: %v, %v; want kept", ok, err)
	}
}

// storeWithKeepAliveKey opens a Store on the shared agent that holds key
// (value v) with KeepAlive and the test TTL, and returns it with a ctx for
// the test, those write options, and the KeepAlive session of that TTL.
func storeWithKeepAliveKey(t *testing.T, key, v string) (*Store, context.Context, *kv.WriteOptions, string) {
	t.Helper()
	s := openStore(t, testConfig(agent(t).Addr))
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	ka := &kv.WriteOptions{TTL: testMinTTL, KeepAlive: true}
	if err := s.Put(ctx, key, []byte(v), ka); err != nil {
		t.Fatal(err)
	}
	s1, err := s.sessions.get(ctx, testMinTTL)
	if err != nil {
		t.Fatal(err)
	}
	return s, ctx, ka, s1
}
