// Package backendtest runs an example's test on every backend: the
// memory store, an embedded etcd, and real ZooKeeper and Consul servers
// started by internal/testenv (skipped when missing, except in CI).
package backendtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regentkv/regent/examples/internal/backend"
	"github.com/regentkv/regent/internal/testenv"
)

// Each runs body once per backend, as a subtest, with an opened cluster
// (closed afterwards) and a ctx that ends after timeout. Session timeouts
// and TTL minimums are short, so that failovers take seconds.
func Each(t *testing.T, timeout time.Duration, body func(t *testing.T, ctx context.Context, cluster *backend.Cluster)) {
	run(t, timeout, body, []flagSet{
		{"memory", func(*testing.T) backend.Flags { return backend.Flags{Backend: backend.Memory} }},
		{"etcd", func(*testing.T) backend.Flags { return backend.Flags{Backend: backend.Etcd} }},
		{"zookeeper", func(t *testing.T) backend.Flags {
			return backend.Flags{Backend: backend.ZooKeeper, Endpoints: testenv.ZooKeeper(t).Addr, ZooKeeperSessionTimeout: 2 * time.Second}
		}},
		{"consul", func(t *testing.T) backend.Flags {
			srv := testenv.Consul(t, testenv.ConsulOptions{})
			return backend.Flags{Backend: backend.Consul, Endpoints: srv.Addr, ConsulSessionTTLMin: time.Second}
		}},
	})
}

// EachSecured runs body once per server backend secured as production
// runs it (TLS with client certificates, and an application identity
// granted one root: see testenv.SecureEtcdServer and the others), with
// the cluster opened through the examples' own TLS and credential flags.
func EachSecured(t *testing.T, timeout time.Duration, body func(t *testing.T, ctx context.Context, cluster *backend.Cluster)) {
	run(t, timeout, body, []flagSet{
		{"etcd-secured", func(t *testing.T) backend.Flags {
			srv := testenv.SecureEtcdServer(t)
			f := tlsFlags(srv.PKI, backend.Flags{Backend: backend.Etcd, Endpoints: srv.Endpoints()[0], Root: testenv.AppRoot, User: srv.AppUser})
			f.PasswordFile = secretFile(t, srv.AppPassword)
			return f
		}},
		{"zookeeper-secured", func(t *testing.T) backend.Flags {
			srv := testenv.SecureZooKeeperServer(t)
			user, pass, _ := strings.Cut(srv.AppAuth, ":")
			f := tlsFlags(srv.PKI, backend.Flags{Backend: backend.ZooKeeper, Endpoints: srv.SecureAddr, ZooKeeperSessionTimeout: 2 * time.Second,
				Root: testenv.AppRoot, User: user})
			f.PasswordFile = secretFile(t, pass)
			return f
		}},
		{"consul-secured", func(t *testing.T) backend.Flags {
			srv := testenv.SecureConsulServer(t)
			f := tlsFlags(srv.PKI, backend.Flags{Backend: backend.Consul, Endpoints: srv.HTTPSAddr, ConsulSessionTTLMin: time.Second, Root: testenv.AppRoot})
			f.TokenFile = secretFile(t, srv.AppToken)
			return f
		}},
	})
}

func tlsFlags(pki *testenv.PKI, f backend.Flags) backend.Flags {
	f.TLSCA, f.TLSCert, f.TLSKey = pki.CAFile, pki.ClientCertFile, pki.ClientKey
	return f
}

// secretFile writes a secret to a file of the test's, as an operator
// hands one to a program (a mounted secret).
func secretFile(t *testing.T, secret string) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type flagSet struct {
	name  string
	flags func(t *testing.T) backend.Flags
}

func run(t *testing.T, timeout time.Duration, body func(t *testing.T, ctx context.Context, cluster *backend.Cluster), sets []flagSet) {
	for _, tc := range sets {
		t.Run(tc.name, func(t *testing.T) {
			flags := tc.flags(t)
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			cluster, err := flags.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cluster.Close() }()
			body(t, ctx, cluster)
		})
	}
}
