package testenv

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regentkv/regent/kv/etcd/embedded"
)

// EtcdEndpointsEnv names the environment variable that points the tests at
// an external etcd (comma-separated client URLs) instead of an embedded one.
const EtcdEndpointsEnv = "REGENT_ETCD_ENDPOINTS"

// etcdStartTimeout bounds how long an embedded server may take to come up on
// a loaded CI machine.
const etcdStartTimeout = 30 * time.Second

// Etcd returns the client endpoints of an etcd for the test: the external
// one named by REGENT_ETCD_ENDPOINTS if set, else an embedded server started
// for this test and stopped by t.Cleanup. Tests sharing an external server
// must use distinct key prefixes.
func Etcd(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv(EtcdEndpointsEnv); env != "" {
		return strings.Split(env, ",")
	}
	return EtcdServer(t).Endpoints()
}

// EtcdServer starts an embedded etcd for the test, stopped by t.Cleanup, and
// returns it so that the test can Stop and Restart it. It ignores
// REGENT_ETCD_ENDPOINTS: an external server cannot be restarted from here.
// Extra options are passed to embedded.Start (fsync is off: test data is
// disposable).
func EtcdServer(t testing.TB, opts ...embedded.Option) *embedded.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), etcdStartTimeout)
	defer cancel()
	opts = append([]embedded.Option{embedded.WithUnsafeNoFsync()}, opts...)
	s, err := embedded.Start(ctx, opts...)
	if err != nil {
		t.Fatalf("testenv: start embedded etcd: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
