package zookeeper_test

import (
	"errors"
	"testing"

	"github.com/regentkv/regent/kv"
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
