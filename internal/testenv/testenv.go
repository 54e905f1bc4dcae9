package testenv

import (
	"net"
	"os"
	"testing"
)

// InCI reports whether the tests run in CI, where missing servers are
// failures rather than skips.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test because a server it needs is not available: a skip
// that says how to get the server, or a failure in CI.
func Missing(t testing.TB, what, howToGet string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is not available, and CI=true forbids skipping: %s", what, howToGet)
	}
	t.Skipf("%s is not available; skipping (%s)", what, howToGet)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Servers that can bind port 0 themselves should do that instead.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: no free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
