package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/etcd/embedded"
	"github.com/regentkv/regent/kv/kvtest"
)

// With etcd's RBAC on, an application user granted one prefix works there,
// and everything outside it is kv.ErrPermissionDenied, wrong credentials
// kv.ErrAuthFailed: typed, at once, nothing written.
func TestRBACErrorsAreTyped(t *testing.T) {
	// The minimum bcrypt cost: the suite opens many authenticated clients
	// at once, and each authentication hashes the password (under -race,
	// default-cost hashes made them time out).
	eps := testenv.EtcdServer(t, embedded.WithBcryptCost(4)).Endpoints()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	admin, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "app"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "app", "/app/", clientv3.GetPrefixRangeEnd("/app/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "app", "apppw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "app", "app"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("setting up RBAC: %v", err)
		}
	}

	inside, err := etcd.New(ctx, etcd.Config{Endpoints: eps, Username: "app", Password: "apppw", Root: "app"})
	if err != nil {
		t.Fatalf("New with the application user: %v", err)
	}
	defer func() { _ = inside.Close() }()
	if err := inside.Put(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatalf("Put inside the granted prefix: %v", err)
	}
	// New's probe reads under the Store's root, so a Store rooted outside
	// the grant fails there already, typed.
	start := time.Now()
	_, err = etcd.New(ctx, etcd.Config{Endpoints: eps, Username: "app", Password: "apppw", Root: "other"})
	if !errors.Is(err, kv.ErrPermissionDenied) || time.Since(start) > 3*time.Second {
		t.Errorf("New rooted outside the grant: %v after %v; want kv.ErrPermissionDenied at once", err, time.Since(start))
	}
	_, err = etcd.New(ctx, etcd.Config{Endpoints: eps, Username: "app", Password: "wrong", Root: "app"})
	if !errors.Is(err, kv.ErrAuthFailed) {
		t.Errorf("New with a wrong password: %v; want kv.ErrAuthFailed", err)
	}

	// Least privilege: the whole conformance suite as the application user,
	// granted "/app/" only (regent's internal keys live under the root).
	root, err := clientv3.New(clientv3.Config{Endpoints: eps, Username: "root", Password: "rootpw", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = root.Close() }()
	t.Run("Conformance", func(t *testing.T) {
		kvtest.Run(t, kvtest.Harness{
			Name: "etcd-rbac",
			New: func(t testing.TB) kv.Store {
				return newStore(t, eps, etcd.Config{Username: "app", Password: "apppw", Root: "app"})
			},
			Kill: func(t testing.TB, s kv.Store) { _ = s.(*etcd.Store).Client().Close() },
			Compact: func(t testing.TB, _ kv.Store, rev uint64) {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := root.Compact(cctx, int64(rev), clientv3.WithCompactPhysical()); err != nil {
					t.Fatalf("Compact(%d) as root: %v", rev, err)
				}
			},
			MinTTL:   etcd.DefaultMinTTL,
			TTLSlack: ttlSlack,
		})
	})
}
