package consul

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
)

// The conformance suite over HTTPS with client certificates required; an
// untrusted server certificate, or none of the client's, is a typed error
// at once that says what is wrong.
func TestTLSRealServer(t *testing.T) {
	pki := testenv.NewPKI(t)
	srv := testenv.Consul(t, testenv.ConsulOptions{TLS: pki})
	tlsConfig := func(t testing.TB) Config {
		cfg := testConfig(srv.HTTPSAddr)
		cfg.TLS = pki.ClientTLS(t)
		return cfg
	}
	t.Run("Conformance", func(t *testing.T) {
		kvtest.Run(t, kvtest.Harness{
			Name:            "consul-tls",
			New:             func(t testing.TB) kv.Store { return openStore(t, tlsConfig(t)) },
			Kill:            func(t testing.TB, s kv.Store) { s.(*Store).kill() },
			StreamNoHistory: true,
			Compact:         func(t testing.TB, s kv.Store, rev uint64) { s.(*Store).Compact(rev) },
			MinTTL:          testMinTTL,
			TTLSlack:        500 * time.Millisecond,
		})
	})
	for name, c := range map[string]*tls.Config{
		"untrusted server certificate": {MinVersion: tls.VersionTLS12, Certificates: pki.ClientTLS(t).Certificates},
		"no client certificate":        {MinVersion: tls.VersionTLS12, RootCAs: pki.ClientTLS(t).RootCAs},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(srv.HTTPSAddr)
			cfg.TLS = c
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			s, err := New(ctx, cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			// Go's HTTP/2 client reports a refused client certificate as a
			// broken pipe, a reset or a connection it could not establish;
			// New's own TLS probe says what it was.
			said := strings.Contains(err.Error(), "certificate")
			if !errors.Is(err, kv.ErrNotReachable) || !said || time.Since(start) > 3*time.Second {
				t.Errorf("New: %v after %v; want kv.ErrNotReachable at once, saying what is wrong with the TLS connection", err, time.Since(start))
			}
			t.Logf("%s: %v", name, err)
		})
	}
}

// Least privilege: ACLs in default-deny mode and an application token
// whose policy covers the Store's root, regent's internal prefix for it
// and sessions; the whole conformance suite passes with it, and a key
// outside the grant is kv.ErrPermissionDenied.
func TestConformanceWithLeastPrivilegeToken(t *testing.T) {
	srv := testenv.Consul(t, testenv.ConsulOptions{ACLToken: "regent-root"})
	admin, err := api.NewClient(&api.Config{Address: srv.Addr, Token: "regent-root"})
	if err != nil {
		t.Fatal(err)
	}
	policy, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: "regent-app", Rules: `
key_prefix "app/" { policy = "write" }
key_prefix "__regent/app/" { policy = "write" }
session_prefix "" { policy = "write" }
`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := admin.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	appConfig := func(root string) Config {
		cfg := testConfig(srv.Addr)
		cfg.Token, cfg.Root = token.SecretID, root
		return cfg
	}
	t.Run("Conformance", func(t *testing.T) {
		kvtest.Run(t, kvtest.Harness{
			Name:            "consul-acl",
			New:             func(t testing.TB) kv.Store { return openStore(t, appConfig("app")) },
			Kill:            func(t testing.TB, s kv.Store) { s.(*Store).kill() },
			StreamNoHistory: true,
			Compact:         func(t testing.TB, s kv.Store, rev uint64) { s.(*Store).Compact(rev) },
			MinTTL:          testMinTTL,
			TTLSlack:        500 * time.Millisecond,
		})
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := New(ctx, appConfig("other")); !errors.Is(err, kv.ErrPermissionDenied) {
		t.Errorf("New rooted outside the grant: %v; want kv.ErrPermissionDenied", err)
	}
}
