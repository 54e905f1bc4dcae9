package etcd_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/etcd/embedded"
	"github.com/regentkv/regent/kv/kvtest"
)

// The whole conformance suite over TLS with client-certificate auth; and a
// server certificate the client does not trust, or no client certificate,
// is a typed error at once, nothing written.
func TestTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	srv := testenv.EtcdServer(t, embedded.WithClientTLS(embedded.ClientTLS{
		CertFile: pki.ServerCertFile, KeyFile: pki.ServerKey, TrustedCAFile: pki.CAFile, ClientCertAuth: true}))
	eps := srv.Endpoints()
	t.Run("Conformance", func(t *testing.T) {
		kvtest.Run(t, kvtest.Harness{
			Name: "etcd-tls",
			New: func(t testing.TB) kv.Store {
				return newStore(t, eps, etcd.Config{Root: "tls-conformance", TLS: pki.ClientTLS(t)})
			},
			Kill: func(t testing.TB, s kv.Store) { _ = s.(*etcd.Store).Client().Close() },
			Compact: func(t testing.TB, s kv.Store, rev uint64) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := s.(*etcd.Store).Client().Compact(ctx, int64(rev), clientv3.WithCompactPhysical()); err != nil {
					t.Fatalf("Compact(%d): %v", rev, err)
				}
			},
			MinTTL:   etcd.DefaultMinTTL,
			TTLSlack: ttlSlack,
		})
	})
	for name, tc := range map[string]struct {
		cfg  *tls.Config
		says string
	}{
		"untrusted server certificate": {&tls.Config{MinVersion: tls.VersionTLS12, Certificates: pki.ClientTLS(t).Certificates}, "certificate"}, // system roots only
		"no client certificate":        {&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pki.ClientTLS(t).RootCAs}, "certificate"},
		"no TLS at all":                {nil, "Config.TLS is nil"},
	} {
		cfg := tc.cfg
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			s, err := etcd.New(ctx, etcd.Config{Endpoints: eps, TLS: cfg, DialTimeout: 2 * time.Second})
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, kv.ErrNotReachable) || time.Since(start) > 4*time.Second || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("New: %v after %v; want kv.ErrNotReachable within the DialTimeout saying %q", err, time.Since(start), tc.says)
			}
			t.Logf("%s: %v", name, err)
		})
	}
}
