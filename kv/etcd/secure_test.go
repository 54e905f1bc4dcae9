package etcd_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

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
			Restart: func(t testing.TB) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				srv.Stop()
				if err := srv.Restart(ctx); err != nil {
					t.Fatalf("Restart: %v", err)
				}
			},
		})
	})
	t.Run("Refused", func(t *testing.T) {
		clientCert := srv.PKI.ClientTLS(t).Certificates
		for _, tc := range []struct {
			name string
			cfg  etcd.Config
			want error
			says string
		}{
			// With client-certificate auth and no username, etcd takes the
			// certificate's CN ("client") as the user, which has no role.
			{"no credentials", etcd.Config{TLS: srv.PKI.ClientTLS(t), Root: testenv.AppRoot}, kv.ErrPermissionDenied, "permission"},
			{"wrong password", etcd.Config{TLS: srv.PKI.ClientTLS(t), Root: testenv.AppRoot, Username: srv.AppUser, Password: "not-the-password"},
				kv.ErrAuthFailed, "authentication"},
			{"a root outside the grant", app(etcd.Config{Root: "other"}), kv.ErrPermissionDenied, "permission"},
			{"untrusted server certificate", app(etcd.Config{TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: clientCert}}), kv.ErrNotReachable, "certificate"},
			{"no client certificate", app(etcd.Config{TLS: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: srv.PKI.RootCAs()}}), kv.ErrNotReachable, "certificate"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.cfg.Root == "" {
					tc.cfg.Root = testenv.AppRoot
				}
				tc.cfg.Endpoints, tc.cfg.DialTimeout = srv.Endpoints(), 2*time.Second
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				start := time.Now()
				s, err := etcd.New(ctx, tc.cfg)
				if err == nil {
					_ = s.Put(ctx, "written", []byte("x"), nil)
					_ = s.Close()
					t.Fatal("New succeeded")
				}
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) || time.Since(start) > 4*time.Second {
					t.Errorf("New: %v after %v; want %v within the DialTimeout saying %q", err, time.Since(start), tc.want, tc.says)
				}
				if tc.cfg.Password != "" && strings.Contains(err.Error(), tc.cfg.Password) {
					t.Errorf("the error carries the password: %v", err)
				}
				t.Logf("%s: %v", tc.name, err)
			})
		}
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
		start := time.Now()
		calls := map[string]func() error{
			"Get":    func() error { _, err := s.Get(ctx, "revoked/k", nil); return err },
			"Put":    func() error { return s.Put(ctx, "revoked/k", []byte("theirs"), nil) },
			"List":   func() error { _, err := s.List(ctx, "revoked", nil); return err },
			"Delete": func() error { return s.Delete(ctx, "revoked/k") },
			"Lock": func() error {
				l, err := s.NewLock(ctx, "revoked/lock", nil)
				if err != nil {
					return err
				}
				_, err = l.Lock(ctx)
				return err
			},
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, kv.ErrPermissionDenied) {
				t.Errorf("%s after the revoke: %v; want kv.ErrPermissionDenied", name, err)
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the refused calls took %v; want each at once", d)
		}
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
	core, logs := observer.New(zap.DebugLevel)
	cfg := etcd.Config{Endpoints: srv.Endpoints(), TLS: srv.PKI.ClientTLS(t), Username: srv.AppUser, Password: srv.AppPassword,
		Root: testenv.AppRoot, Logger: zap.New(core), DialTimeout: 2 * time.Second}
	var said []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		said = append(said, fmt.Sprintf(f, cfg), fmt.Sprintf(f, &cfg))
	}
	s := newStore(t, srv.Endpoints(), cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := s.Put(ctx, "k", []byte("v"), &kv.WriteOptions{TTL: 2 * time.Second, KeepAlive: true}); err != nil {
		t.Fatal(err)
	}
	wrong := cfg
	wrong.Password = "not-the-password"
	if _, err := etcd.New(ctx, wrong); err != nil {
		said = append(said, err.Error())
	}
	srv.Stop() // the Store logs its lost keep-alive and retries
	gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := s.Get(gctx, "k", nil)
	gcancel()
	if err != nil {
		said = append(said, err.Error())
	}
	_ = s.Close()
	for _, e := range logs.All() {
		said = append(said, e.Message)
		for k, v := range e.ContextMap() {
			said = append(said, k+"="+fmt.Sprintf("%v", v))
		}
	}
	for _, line := range said {
		if strings.Contains(line, srv.AppPassword) {
			t.Errorf("the password was printed: %s", line)
		}
	}
	if !strings.Contains(said[0], "Username:"+srv.AppUser) {
		t.Errorf("a printed Config should still show everything but the secret: %s", said[0])
	}
}
