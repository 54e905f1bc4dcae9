package zookeeper_test

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/election/electiontest"
	"github.com/regentkv/regent/informer/informertest"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
	"github.com/regentkv/regent/kv/zookeeper"
)

// TestSecured runs regent as production does: ZooKeeper's TLS client port
// with client certificates required, a root znode the world may only
// read, and an application identity (digest) owning the subtree "/app".
// The conformance, lock, election and informer suites pass with that
// identity alone; everything else is refused with a typed error, at once,
// with nothing written.
func TestSecured(t *testing.T) {
	srv := testenv.SecureZooKeeperServer(t)
	app := func(cfg zookeeper.Config) zookeeper.Config {
		if len(cfg.Servers) == 0 {
			cfg.Servers = srv.SecureAddrs()
		}
		if cfg.Root == "" {
			cfg.Root = "/" + testenv.AppRoot
		}
		if cfg.Auth == "" {
			cfg.Auth = srv.AppAuth
		}
		if cfg.TLS == nil {
			cfg.TLS = srv.PKI.ClientTLS(t)
		}
		if cfg.SessionTimeout == 0 {
			cfg.SessionTimeout = testSessionTimeout
		}
		return cfg
	}
	openApp := func(t testing.TB, cfg zookeeper.Config) kv.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := zookeeper.New(ctx, app(cfg))
		if err != nil {
			t.Fatalf("zookeeper.New: %v", err)
		}
		return s
	}
	t.Run("Conformance", func(t *testing.T) {
		kvtest.Run(t, conformanceHarness("zookeeper-secured", func() zookeeper.Config { return app(zookeeper.Config{}) }))
	})
	t.Run("Election", func(t *testing.T) {
		const ttl = 3 * time.Second
		c := testenv.NewCutter(srv.SecureAddr, func(t testing.TB, addr string) kv.Store {
			return openApp(t, zookeeper.Config{Servers: []string{addr}, SessionTimeout: ttl})
		})
		electiontest.Run(t, electiontest.Harness{
			Harness: kvtest.Harness{Name: "zookeeper-secured", New: c.New, Kill: c.Cut, MinTTL: zookeeper.MinTTL, TTLSlack: ttl},
			TTL:     ttl,
			Cut:     c.Cut,
		})
	})
	t.Run("Informer", func(t *testing.T) {
		informertest.Run(t, informertest.Harness{
			Name:      "zookeeper-secured",
			New:       func(t testing.TB) kv.Store { return openApp(t, zookeeper.Config{}) },
			NoHistory: true,
			Compact:   func(_ testing.TB, s kv.Store, rev uint64) { zookeeper.Compact(s.(*zookeeper.Store), rev) },
			Restart: func(t testing.TB) {
				srv.Stop(t)
				srv.Start(t)
			},
		})
	})
	t.Run("Refused", func(t *testing.T) {
		clientCert := srv.PKI.ClientTLS(t).Certificates
		refused := func(name string, cfg zookeeper.Config, want error, says string) testenv.Refusal {
			cfg.ConnectTimeout = 2 * time.Second
			_, secret, _ := strings.Cut(cfg.Auth, ":")
			return testenv.Refusal{Name: name, Want: want, Says: says, Secret: secret,
				Open: func(ctx context.Context) (kv.Store, error) { return zookeeper.New(ctx, cfg) }}
		}
		noAuth := app(zookeeper.Config{})
		noAuth.Auth = ""
		testenv.CheckRefusals(t, []testenv.Refusal{
			refused("no credentials", noAuth, kv.ErrPermissionDenied, "ACL"),
			refused("wrong password", app(zookeeper.Config{Auth: "app:not-the-password"}), kv.ErrPermissionDenied, "ACL"),
			refused("a root outside the grant", app(zookeeper.Config{Root: "/other"}), kv.ErrPermissionDenied, "ACL"),
			refused("untrusted server certificate", app(zookeeper.Config{TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: clientCert}}),
				kv.ErrNotReachable, "certificate"),
			refused("no client certificate", app(zookeeper.Config{TLS: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: srv.PKI.RootCAs()}}),
				kv.ErrNotReachable, "certificate"),
		})
		admin := adminConn(t, srv)
		top, _, err := admin.Children("/")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(top)
		if !slices.Equal(top, []string{testenv.AppRoot, "zookeeper"}) {
			t.Errorf("the root's children: %v; want only %s and zookeeper (a refused call wrote something)", top, testenv.AppRoot)
		}
	})
	t.Run("CertificateRotation", func(t *testing.T) {
		testenv.CheckClientCertRotation(t, srv.PKI, srv.SecureAddr, func(ctx context.Context, addr string, tlsCfg *tls.Config) (kv.Store, error) {
			return zookeeper.New(ctx, app(zookeeper.Config{Servers: []string{addr}, TLS: tlsCfg, ConnectTimeout: 2 * time.Second}))
		})
	})
	t.Run("GrantNarrowed", func(t *testing.T) {
		// ZooKeeper's ACLs are per znode: an operator who takes the create
		// right on "/app" away leaves the application its existing keys
		// (each znode carries its own ACL), and every new key directly
		// under the root is refused, typed, at once, nothing written.
		s := openApp(t, zookeeper.Config{})
		defer func() { _ = s.Close() }()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := s.Put(ctx, "narrowed", []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		admin := adminConn(t, srv)
		acl, _, err := admin.GetACL("/" + testenv.AppRoot)
		if err != nil {
			t.Fatal(err)
		}
		user, pass, _ := strings.Cut(srv.AppAuth, ":")
		adminUser, adminPass, _ := strings.Cut(testenv.ZooKeeperAdminAuth, ":")
		readOnly := append(zk.DigestACL(zk.PermRead, user, pass), zk.DigestACL(zk.PermAll, adminUser, adminPass)...)
		if _, err := admin.SetACL("/"+testenv.AppRoot, readOnly, -1); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := admin.SetACL("/"+testenv.AppRoot, acl, -1); err != nil {
				t.Errorf("restoring the ACL: %v", err)
			}
		}()
		start := time.Now()
		if err := s.Put(ctx, "new", []byte("v"), nil); !errors.Is(err, kv.ErrPermissionDenied) {
			t.Errorf("Put of a new key: %v; want kv.ErrPermissionDenied", err)
		}
		if err := s.Put(ctx, "new/nested", []byte("v"), nil); !errors.Is(err, kv.ErrPermissionDenied) {
			t.Errorf("Put of a new nested key: %v; want kv.ErrPermissionDenied", err)
		}
		if p, err := s.Get(ctx, "narrowed", nil); err != nil || string(p.Value) != "v" {
			t.Errorf("Get of the existing key (its own ACL still allows it): %v, %v", p, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the refused calls took %v; want each at once", d)
		}
		if ok, _, err := admin.Exists("/" + testenv.AppRoot + "/new"); ok || err != nil {
			t.Errorf("a refused create left a znode: %v, %v", ok, err)
		}
	})
}

// adminConn is a plain-port connection with the operator's identity.
func adminConn(t *testing.T, srv *testenv.SecureZooKeeper) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	if err := conn.AddAuth("digest", []byte(testenv.ZooKeeperAdminAuth)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// The digest password never reaches a log line or an error string, nor a
// printed Config.
func TestAuthNeverPrinted(t *testing.T) {
	srv := testenv.SecureZooKeeperServer(t)
	_, secret, _ := strings.Cut(srv.AppAuth, ":")
	w := testenv.WatchSecret(secret)
	cfg := zookeeper.Config{Servers: srv.SecureAddrs(), TLS: srv.PKI.ClientTLS(t), Auth: srv.AppAuth, Root: "/" + testenv.AppRoot,
		SessionTimeout: testSessionTimeout, Logger: w.Logger}
	if printed := w.Config(cfg, &cfg); !strings.Contains(printed, "Auth:app:") {
		t.Errorf("a printed Config should show the user, the password redacted: %s", printed)
	}
	s := open(t, cfg)
	w.Value(s)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := s.Put(ctx, "k", []byte("v"), &kv.WriteOptions{TTL: testSessionTimeout, KeepAlive: true}); err != nil {
		t.Fatal(err)
	}
	wrong := cfg
	wrong.Auth, wrong.Root = "app:not-the-password", "/other"
	_, err := zookeeper.New(ctx, wrong)
	w.Err(err)
	srv.Stop(t) // the Store logs its lost connection and retries
	gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = s.Get(gctx, "k", nil)
	gcancel()
	w.Err(err)
	w.WaitForLog(ctx)
	_ = s.Close()
	w.Check(t)
}
