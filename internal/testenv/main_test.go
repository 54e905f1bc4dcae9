package testenv

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs a child role when this binary was started as one (the etcd
// members of the process tests), and otherwise checks that the servers
// started here leave no goroutine behind (process waiters, etcd's
// embedded server).
func TestMain(m *testing.M) {
	if code, ok := Child(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
