package zookeeper_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
	"github.com/regentkv/regent/kv/zookeeper"
)

// The conformance suite over ZooKeeper's secure client port (Netty, TLS,
// client certificates required); and an untrusted server certificate, or
// no client certificate, is a typed error within the connect timeout.
func TestTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	srv := testenv.ZooKeeperTLS(t, pki)
	var cutters sync.Map // *zookeeper.Store -> *cutter
	t.Run("Conformance", func(t *testing.T) {
		kvtest.Run(t, kvtest.Harness{
			Name: "zookeeper-tls",
			New: func(t testing.TB) kv.Store {
				c := &cutter{}
				cfg := config([]string{srv.SecureAddr}, "/kvtest-tls")
				cfg.TLS = pki.ClientTLS(t)
				cfg.Dialer = c.dial
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				s, err := zookeeper.New(ctx, cfg)
				if err != nil {
					t.Fatalf("zookeeper.New over TLS: %v", err)
				}
				cutters.Store(s, c)
				return s
			},
			Kill: func(t testing.TB, s kv.Store) {
				c, ok := cutters.Load(s)
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
	})
	for name, cfg := range map[string]*tls.Config{
		"untrusted server certificate": {MinVersion: tls.VersionTLS12, Certificates: pki.ClientTLS(t).Certificates},
		"no client certificate":        {MinVersion: tls.VersionTLS12, RootCAs: pki.ClientTLS(t).RootCAs},
	} {
		t.Run(name, func(t *testing.T) {
			c := config([]string{srv.SecureAddr}, "/kvtest-tls")
			c.TLS, c.ConnectTimeout = cfg, 2*time.Second
			start := time.Now()
			s, err := zookeeper.New(t.Context(), c)
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, kv.ErrNotReachable) || !strings.Contains(err.Error(), "certificate") || time.Since(start) > 5*time.Second {
				t.Errorf("New: %v after %v; want kv.ErrNotReachable saying what is wrong with the certificate", err, time.Since(start))
			}
			t.Logf("%s: %v", name, err)
		})
	}
}
