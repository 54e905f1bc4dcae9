package bench

import (
	"os"
	"testing"

	"github.com/regentkv/regent/internal/testenv"
)

// TestMain lets testenv run servers as children of this binary (etcd in a
// process of its own, so that a benchmark's heap is the client's alone).
func TestMain(m *testing.M) {
	if code, ok := testenv.Child(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
