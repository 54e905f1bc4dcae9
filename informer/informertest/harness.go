package informertest

import (
	"testing"

	"github.com/regentkv/regent/kv"
)

// Harness tells the suite how to reach one backend.
type Harness struct {
	// Name labels failures.
	Name string
	// New returns a new, independent client of the backend. The suite
	// closes every client it opens. Its stores must implement kv.Streamer.
	New func(t testing.TB) kv.Store
	// Compact discards history before rev, as kvtest.Harness.Compact, so
	// that Events from an older revision reports kv.ErrCompacted.
	Compact func(t testing.TB, s kv.Store, rev uint64)
	// NoHistory says that the stores keep no history of past changes
	// (ZooKeeper, Consul): resuming a stream after a cut may re-list
	// instead of replaying. Leave it false where history exists (memory,
	// etcd), so that the resume case checks that a short cut costs no
	// re-list and no tombstone.
	NoHistory bool
	// Restart stops the backend's server and starts it again, returning
	// once it serves. Required for every backend with a server; nil only
	// for an in-process store (kv/memory), which has no restart case.
	Restart func(t testing.TB)
	// RestartLosesData says that Restart comes back empty (Consul -dev):
	// the restart case then checks that the informer re-lists and deletes
	// the lost keys with tombstones.
	RestartLosesData bool
}
