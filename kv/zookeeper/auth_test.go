package zookeeper_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
	"github.com/regentkv/regent/kv/zookeeper"
)

// A subtree created with a digest identity (Config.Auth) refuses other
// identities with kv.ErrPermissionDenied: typed, at once, nothing written.
func TestDigestACLErrorsAreTyped(t *testing.T) {
	ctx := t.Context()
	owner := config(server.Servers(), "/secured")
	owner.Auth = "app:secret"
	s := open(t, owner)
	if err := s.Put(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatalf("Put by the owner: %v", err)
	}
	for name, auth := range map[string]string{"no credentials": "", "wrong password": "app:wrong"} {
		t.Run(name, func(t *testing.T) {
			cfg := config(server.Servers(), "/secured")
			cfg.Auth = auth
			other := open(t, cfg)
			if _, err := other.Get(ctx, "k", nil); !errors.Is(err, kv.ErrPermissionDenied) {
				t.Errorf("Get: %v; want kv.ErrPermissionDenied", err)
			}
			if err := other.Put(ctx, "k", []byte("theirs"), nil); !errors.Is(err, kv.ErrPermissionDenied) {
				t.Errorf("Put: %v; want kv.ErrPermissionDenied", err)
			}
			if err := other.Put(ctx, "new", []byte("theirs"), nil); !errors.Is(err, kv.ErrPermissionDenied) {
				t.Errorf("Put of a new key: %v; want kv.ErrPermissionDenied", err)
			}
		})
	}
	p, err := s.Get(ctx, "k", nil)
	if err != nil || string(p.Value) != "v" {
		t.Fatalf("the owner's key after the refused writes: %v, %v; want v", p, err)
	}
	if ok, err := s.Exists(ctx, "new", nil); ok || err != nil {
		t.Errorf("a refused create left a key: %v, %v", ok, err)
	}
}

// Least privilege: the whole conformance suite with a digest identity that
// owns its subtree (every znode regent creates carries that identity's
// ACL, lock contenders and the revision counter included).
func TestConformanceWithDigestIdentity(t *testing.T) {
	kvtest.Run(t, kvtest.Harness{
		Name: "zookeeper-digest",
		New: func(t testing.TB) kv.Store {
			c := &cutter{}
			cfg := config(server.Servers(), "/kvtest-digest")
			cfg.Auth = "app:secret"
			cfg.Dialer = c.dial
			s := open(t.(*testing.T), cfg)
			digestCutters.Store(s, c)
			return s
		},
		Kill: func(t testing.TB, s kv.Store) {
			c, ok := digestCutters.Load(s)
			if !ok {
				t.Fatalf("Kill: store %p not from New", s)
			}
			c.(*cutter).cut()
		},
		Compact:         func(t testing.TB, s kv.Store, rev uint64) { s.(*zookeeper.Store).Compact(rev) },
		MinTTL:          zookeeper.MinTTL,
		MinKeepAliveTTL: testSessionTimeout,
		StreamNoHistory: true,
		TTLSlack:        testSessionTimeout + 2*testenv.ZooKeeperCheckInterval,
	})
}

var digestCutters sync.Map // *zookeeper.Store -> *cutter
