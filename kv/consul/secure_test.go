package consul

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/election/electiontest"
	"github.com/regentkv/regent/informer/informertest"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
)

// TestSecured runs regent as production does: HTTPS with client
// certificates required and ACLs in default-deny mode, with an application
// token whose policy (testenv.AppPolicy) covers the Store's root, regent's
// internal keys for it and sessions. The conformance, lock, election and
// informer suites pass with that token alone; everything else is refused
// with a typed error, at once, with nothing written.
func TestSecured(t *testing.T) {
	srv := testenv.SecureConsulServer(t)
	hostPort := strings.TrimPrefix(srv.HTTPSAddr, "https://")
	app := func(cfg Config) Config {
		if len(cfg.Addresses) == 0 {
			cfg.Addresses = []string{srv.HTTPSAddr}
		}
		cfg.SessionTTLMin, cfg.LockTTL = time.Second, 3*time.Second
		if cfg.Token == "" {
			cfg.Token = srv.AppToken
		}
		if cfg.Root == "" {
			cfg.Root = testenv.AppRoot
		}
		if cfg.TLS == nil {
			cfg.TLS = srv.PKI.ClientTLS(t)
		}
		return cfg
	}
	t.Run("Conformance", func(t *testing.T) {
		kvtest.Run(t, kvtest.Harness{
			Name:            "consul-secured",
			New:             func(t testing.TB) kv.Store { return openStore(t, app(Config{})) },
			Kill:            func(t testing.TB, s kv.Store) { s.(*Store).kill() },
			StreamNoHistory: true,
			Compact:         func(t testing.TB, s kv.Store, rev uint64) { s.(*Store).compact(rev) },
			MinTTL:          testMinTTL,
			TTLSlack:        500 * time.Millisecond,
		})
	})
	t.Run("Election", func(t *testing.T) {
		c := testenv.NewCutter(hostPort, func(t testing.TB, addr string) kv.Store {
			return openStore(t, app(Config{Addresses: []string{"https://" + addr}}))
		})
		electiontest.Run(t, electiontest.Harness{
			Harness: kvtest.Harness{Name: "consul-secured", New: c.New, Kill: c.Cut, MinTTL: testMinTTL, TTLSlack: 500 * time.Millisecond},
			TTL:     3 * time.Second,
			Cut:     c.Cut,
		})
	})
	t.Run("Informer", func(t *testing.T) {
		informertest.Run(t, informertest.Harness{
			Name:      "consul-secured",
			New:       func(t testing.TB) kv.Store { return openStore(t, app(Config{})) },
			NoHistory: true,
			Compact:   func(_ testing.TB, s kv.Store, rev uint64) { s.(*Store).compact(rev) },
			// The server keeps its data (and so its ACLs) on disk.
			Restart: func(t testing.TB) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				srv.Process().Kill()
				if err := srv.Restart(ctx); err != nil {
					t.Fatalf("Restart: %v", err)
				}
			},
		})
	})
	t.Run("Refused", func(t *testing.T) {
		clientCert := srv.PKI.ClientTLS(t).Certificates
		refused := func(name string, cfg Config, want error, says string) testenv.Refusal {
			return testenv.Refusal{Name: name, Want: want, Says: says, Secret: cfg.Token,
				Open: func(ctx context.Context) (kv.Store, error) { return New(ctx, cfg) }}
		}
		noToken := app(Config{})
		noToken.Token = "" // Consul then applies the anonymous token, which default-deny leaves with nothing
		testenv.CheckRefusals(t, []testenv.Refusal{
			refused("no token", noToken, kv.ErrPermissionDenied, "Permission denied"),
			refused("a token Consul does not know", app(Config{Token: "6e3b1f1c-0000-4000-8000-00000000dead"}), kv.ErrAuthFailed, "ACL not found"),
			refused("a root outside the grant", app(Config{Root: "other"}), kv.ErrPermissionDenied, "Permission denied"),
			refused("untrusted server certificate", app(Config{TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: clientCert}}),
				kv.ErrNotReachable, "certificate"),
			refused("no client certificate", app(Config{TLS: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: srv.PKI.RootCAs()}}),
				kv.ErrNotReachable, "certificate"),
		})
		assertNothingOutside(t, srv)
	})
	t.Run("CertificateRotation", func(t *testing.T) {
		testenv.CheckClientCertRotation(t, srv.PKI, hostPort, func(ctx context.Context, addr string, tlsCfg *tls.Config) (kv.Store, error) {
			return New(ctx, app(Config{Addresses: []string{"https://" + addr}, TLS: tlsCfg}))
		})
	})
	t.Run("GrantRevoked", func(t *testing.T) {
		testGrantRevoked(t, srv, app)
	})
}

// testGrantRevoked: an operator empties the application's policy under a
// running Store; every call it no longer allows is kv.ErrPermissionDenied,
// not retried and not reported as an outage, and nothing is written.
func testGrantRevoked(t *testing.T, srv *testenv.SecureConsul, app func(Config) Config) {
	admin := adminClient(t, srv)
	s := openStore(t, app(Config{}))
	defer func() { _ = s.Close() }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := s.Put(ctx, "revoked/k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	held, err := s.NewLock(ctx, "revoked/held", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	policy, _, err := admin.ACL().PolicyReadByName("regent-app", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The keys go, the sessions stay.
	policy.Rules = `key_prefix "" { policy = "deny" }
session_prefix "" { policy = "write" }`
	if _, _, err := admin.ACL().PolicyUpdate(policy, nil); err != nil {
		t.Fatal(err)
	}
	defer func() {
		policy.Rules = testenv.AppPolicy
		if _, _, err := admin.ACL().PolicyUpdate(policy, nil); err != nil {
			t.Errorf("restoring the policy: %v", err)
		}
	}()
	testenv.CheckCallsRefused(t, ctx, s, "revoked", "revoked/k")
	// The held lock's key may not be deleted any more, but Unlock still
	// frees it: destroying the session deletes the keys it holds.
	if err := held.Unlock(ctx); !errors.Is(err, kv.ErrPermissionDenied) {
		t.Errorf("Unlock after the revoke: %v; want kv.ErrPermissionDenied (the key's delete was refused)", err)
	}
	locks, _, err := admin.KV().Keys("__regent/"+testenv.AppRoot+"/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range locks {
		if strings.Contains(k, "held") {
			t.Errorf("the lock key %q outlived Unlock: the session was not destroyed", k)
		}
	}
	pair, _, err := admin.KV().Get(testenv.AppRoot+"/revoked/k", nil)
	if err != nil || pair == nil || string(pair.Value) != "v" {
		t.Errorf("the key after the refused writes: %v, %v; want v", pair, err)
	}
}

func adminClient(t *testing.T, srv *testenv.SecureConsul) *api.Client {
	t.Helper()
	admin, err := api.NewClient(&api.Config{Address: srv.Addr, Token: srv.ManagementToken})
	if err != nil {
		t.Fatal(err)
	}
	return admin
}

// assertNothingOutside checks, with the management token, that no key
// exists outside the application's grant: no refused call wrote anything.
func assertNothingOutside(t *testing.T, srv *testenv.SecureConsul) {
	t.Helper()
	keys, _, err := adminClient(t, srv).KV().Keys("", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, testenv.AppRoot+"/") && !strings.HasPrefix(k, "__regent/"+testenv.AppRoot+"/") {
			t.Errorf("a key outside the grant was written: %q", k)
		}
	}
}

// The token never reaches a log line or an error string, nor a printed
// Config.
func TestTokenNeverPrinted(t *testing.T) {
	srv := testenv.SecureConsulServer(t)
	w := testenv.WatchSecret(srv.AppToken)
	cfg := Config{Addresses: []string{srv.HTTPSAddr}, TLS: srv.PKI.ClientTLS(t), Token: srv.AppToken, Root: testenv.AppRoot,
		SessionTTLMin: time.Second, LockTTL: 3 * time.Second, Logger: w.Logger}
	if printed := w.Config(cfg, &cfg); !strings.Contains(printed, "Root:"+testenv.AppRoot) || !strings.Contains(printed, "REDACTED") {
		t.Errorf("a printed Config should show everything, the token redacted: %s", printed)
	}
	s := openStore(t, cfg)
	w.Value(s)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := s.Put(ctx, "k", []byte("v"), &kv.WriteOptions{TTL: 2 * time.Second, KeepAlive: true}); err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{"6e3b1f1c-0000-4000-8000-00000000dead", ""} {
		wrong := cfg
		wrong.Token, wrong.Root = token, "other"
		_, err := New(ctx, wrong)
		w.Err(err)
	}
	srv.Process().Kill() // the Store logs its lost session and retries
	gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := s.Get(gctx, "k", nil)
	gcancel()
	w.Err(err)
	w.WaitForLog(ctx)
	_ = s.Close()
	w.Check(t)
}
