// Package backendtest runs an example's test on every backend: the
// memory store, an embedded etcd, and real ZooKeeper and Consul servers
// started by internal/testenv (skipped when missing, except in CI).
package backendtest

import (
	"context"
	"testing"
	"time"

	"github.com/regentkv/regent/examples/internal/backend"
	"github.com/regentkv/regent/internal/testenv"
)

// Each runs body once per backend, as a subtest, with an opened cluster
// (closed afterwards) and a ctx that ends after timeout. Session timeouts
// and TTL minimums are short, so that failovers take seconds.
func Each(t *testing.T, timeout time.Duration, body func(t *testing.T, ctx context.Context, cluster *backend.Cluster)) {
	for _, tc := range []struct {
		name  string
		flags func(t *testing.T) backend.Flags
	}{
		{"memory", func(*testing.T) backend.Flags { return backend.Flags{Backend: backend.Memory} }},
		{"etcd", func(*testing.T) backend.Flags { return backend.Flags{Backend: backend.Etcd} }},
		{"zookeeper", func(t *testing.T) backend.Flags {
			return backend.Flags{Backend: backend.ZooKeeper, Endpoints: testenv.ZooKeeper(t).Addr, ZooKeeperSessionTimeout: 2 * time.Second}
		}},
		{"consul", func(t *testing.T) backend.Flags {
			srv := testenv.Consul(t, testenv.ConsulOptions{})
			return backend.Flags{Backend: backend.Consul, Endpoints: srv.Addr, ConsulSessionTTLMin: time.Second}
		}},
	} {
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
