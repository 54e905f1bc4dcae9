package etcd_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/election/electiontest"
	"github.com/regentkv/regent/informer/informertest"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/kvtest"
)

// TestSecured runs regent as production does: client TLS with client
// certificates required and RBAC on, as an application user granted the
// Store's root only. The conformance, lock, election and informer suites
// pass with that grant alone; everything else is refused with a typed
// error, at once, with nothing written.
func TestSecured(t *testing.T) {
	srv := testenv.SecureEtcdServer(t)
	app := func(cfg etcd.Config) etcd.Config {
		cfg.Username, cfg.Password = srv.AppUser, srv.AppPassword
		if cfg.Root == "" {
			cfg.Root = testenv.AppRoot
		}
		if cfg.TLS == nil {
			cfg.TLS = srv.PKI.ClientTLS(t)
		}
		return cfg
	}
	compact := func(t testing.TB, _ kv.Store, rev uint64) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The application user may not compact: the operator does.
		if _, err := srv.Root.Compact(ctx, int64(rev), clientv3.WithCompactPhysical()); err != nil {
			t.Fatalf("Compact(%d) as root: %v", rev, err)
		}
	}
	t.Run("Conformance", func(t *testing.T) {
		kvtest.Run(t, kvtest.Harness{
			Name:     "etcd-secured",
			New:      func(t testing.TB) kv.Store { return newStore(t, srv.Endpoints(), app(etcd.Config{})) },
			Kill:     func(t testing.TB, s kv.Store) { _ = s.(*etcd.Store).Client().Close() },
			Compact:  compact,
			MinTTL:   etcd.DefaultMinTTL,
			TTLSlack: ttlSlack,
		})
	})
	t.Run("Election", func(t *testing.T) {
		c := testenv.NewCutter(strings.TrimPrefix(srv.Endpoints()[0], "https://"), func(t testing.TB, addr string) kv.Store {
			return newStore(t, []string{"https://" + addr}, app(etcd.Config{DialTimeout: 2 * time.Second}))
		})
		electiontest.Run(t, electiontest.Harness{
			Harness: kvtest.Harness{Name: "etcd-secured", New: c.New, Kill: c.Cut, MinTTL: etcd.DefaultMinTTL, TTLSlack: ttlSlack},
			TTL:     3 * time.Second,
			Cut:     c.Cut,
		})
	})
	t.Run("Informer", func(t *testing.T) {
		informertest.Run(t, informertest.Harness{
			Name: "etcd-secured",
			New: func(t testing.TB) kv.Store {
				return newStore(t, srv.Endpoints(), app(etcd.Config{DialTimeout: 2 * time.Second}))
			},
			Compact: compact,
			Restart: restarter(srv.Server),
		})
	})
	t.Run("Refused", func(t *testing.T) {
		clientCert := srv.PKI.ClientTLS(t).Certificates
		refused := func(name string, cfg etcd.Config, want error, says string) testenv.Refusal {
			cfg.Endpoints, cfg.DialTimeout = srv.Endpoints(), 2*time.Second
			return testenv.Refusal{Name: name, Want: want, Says: says, Secret: cfg.Password,
				Open: func(ctx context.Context) (kv.Store, error) { return etcd.New(ctx, cfg) }}
		}
		testenv.CheckRefusals(t, []testenv.Refusal{
			// With client-certificate auth and no username, etcd takes the
			// certificate's CN ("client") as the user, which has no role.
			refused("no credentials", etcd.Config{TLS: srv.PKI.ClientTLS(t), Root: testenv.AppRoot}, kv.ErrPermissionDenied, "permission"),
			refused("wrong password", etcd.Config{TLS: srv.PKI.ClientTLS(t), Root: testenv.AppRoot, Username: srv.AppUser, Password: "not-the-password"},
				kv.ErrAuthFailed, "authentication"),
			refused("a root outside the grant", app(etcd.Config{Root: "other"}), kv.ErrPermissionDenied, "permission"),
			refused("untrusted server certificate", app(etcd.Config{TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: clientCert}}),
				kv.ErrNotReachable, "certificate"),
			refused("no client certificate", app(etcd.Config{TLS: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: srv.PKI.RootCAs()}}),
				kv.ErrNotReachable, "certificate"),
		})
		// An "http" endpoint on a TLS server.
		_, err := etcd.New(t.Context(), etcd.Config{Endpoints: srv.Endpoints(), DialTimeout: 2 * time.Second})
		if !errors.Is(err, kv.ErrNotReachable) || !strings.Contains(err.Error(), "Config.TLS is nil") {
			t.Errorf("New without TLS: %v; want kv.ErrNotReachable saying Config.TLS is nil", err)
		}
		assertNothingOutside(t, srv)
	})
	t.Run("CertificateRotation", func(t *testing.T) {
		testenv.CheckClientCertRotation(t, srv.PKI, strings.TrimPrefix(srv.Endpoints()[0], "https://"),
			func(ctx context.Context, addr string, tlsCfg *tls.Config) (kv.Store, error) {
				return etcd.New(ctx, app(etcd.Config{Endpoints: []string{"https://" + addr}, TLS: tlsCfg, DialTimeout: 2 * time.Second}))
			})
	})
	t.Run("GrantRevoked", func(t *testing.T) {
		// An operator narrows the grant under a running Store: every call
		// it no longer allows is kv.ErrPermissionDenied, not retried and
		// not reported as an outage.
		s := newStore(t, srv.Endpoints(), app(etcd.Config{}))
		defer func() { _ = s.Close() }()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := s.Put(ctx, "revoked/k", []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		prefix := "/" + testenv.AppRoot + "/"
		if _, err := srv.Root.RoleRevokePermission(ctx, "app", prefix, clientv3.GetPrefixRangeEnd(prefix)); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := srv.Root.RoleGrantPermission(context.Background(), "app", prefix, clientv3.GetPrefixRangeEnd(prefix),
				clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
				t.Errorf("restoring the grant: %v", err)
			}
		}()
		testenv.CheckCallsRefused(t, ctx, s, "revoked", "revoked/k")
		resp, err := srv.Root.Get(ctx, prefix+"revoked/k")
		if err != nil || len(resp.Kvs) != 1 || !bytes.Equal(resp.Kvs[0].Value, []byte("v")) {
			t.Errorf("the key after the refused writes: %v, %v; want v", resp, err)
		}
	})
}

// assertNothingOutside checks, as root, that nothing exists outside the
// application's prefix: no refused call wrote anything.
func assertNothingOutside(t *testing.T, srv *testenv.SecureEtcd) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := srv.Root.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range resp.Kvs {
		if !strings.HasPrefix(string(k.Key), "/"+testenv.AppRoot+"/") {
			t.Errorf("a key outside the grant was written: %q", k.Key)
		}
	}
}

// Credentials never reach a log line or an error string, nor a printed
// Config.
func TestCredentialsNeverPrinted(t *testing.T) {
	srv := testenv.SecureEtcdServer(t)
	w := testenv.WatchSecret(srv.AppPassword)
	cfg := etcd.Config{Endpoints: srv.Endpoints(), TLS: srv.PKI.ClientTLS(t), Username: srv.AppUser, Password: srv.AppPassword,
		Root: testenv.AppRoot, Logger: w.Logger, DialTimeout: 2 * time.Second}
	if printed := w.Config(cfg, &cfg); !strings.Contains(printed, "Username:"+srv.AppUser) {
		t.Errorf("a printed Config should still show everything but the secret: %s", printed)
	}
	s := newStore(t, srv.Endpoints(), cfg)
	w.Value(s)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := s.Put(ctx, "k", []byte("v"), &kv.WriteOptions{TTL: 2 * time.Second, KeepAlive: true}); err != nil {
		t.Fatal(err)
	}
	wrong := cfg
	wrong.Password = "not-the-password"
	_, err := etcd.New(ctx, wrong)
	w.Err(err)
	srv.Stop() // the Store logs its lost keep-alive and retries
	gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = s.Get(gctx, "k", nil)
	gcancel()
	w.Err(err)
	w.WaitForLog(ctx)
	_ = s.Close()
	w.Check(t)
}
