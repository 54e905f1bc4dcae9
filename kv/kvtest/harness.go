package kvtest

import (
	"testing"
	"time"

	"github.com/regentkv/regent/kv"
)

// Harness tells the suite how to reach one backend. Every field without
// "optional" in its comment is required: the suite fails (it never skips)
// when one is missing, so a driver cannot pass by leaving cases out.
type Harness struct {
	// Name labels failures, e.g. "etcd".
	Name string

	// New returns a new, independent client of the same backend: another
	// process, as far as the backend can tell (its own session/lease, its own
	// connection). Two clients from New see each other's writes. The suite
	// closes every client it opens; New should not register a Cleanup that
	// fails when the client is already closed.
	New func(t testing.TB) kv.Store

	// Kill makes a client die without a goodbye: its connection is cut and
	// its keep-alives stop, but nothing is released or deleted on the server
	// (no lease revoke, no session destroy, no lock release). Afterwards the
	// suite still calls Close on it, which must not hang or panic.
	Kill func(t testing.TB, s kv.Store)

	// Compact discards the history of the backend before rev (etcd's
	// meaning: a stream may still start from rev itself), so that
	// Streamer.Events from an older revision reports ErrCompacted.
	// Required when New's stores implement kv.Streamer.
	Compact func(t testing.TB, s kv.Store, rev uint64)

	// MinTTL is the smallest TTL the driver accepts; a smaller positive TTL
	// must be a *kv.TTLError. TTL tests use max(MinTTL, 1s).
	MinTTL time.Duration

	// StreamNoHistory, optional, says that the stores' kv.Streamer keeps no
	// history of past changes (ZooKeeper, Consul): Events from a revision
	// older than the last change below the prefix may report ErrCompacted
	// instead of replaying, and changes to one key faster than the server
	// reports them may merge, as the Streamer contract allows. The resume
	// case then accepts that typed error in place of the replay, and the
	// burst case (many changes without waiting) checks that the delivered
	// events end in the final state rather than listing every change; every
	// other stream case is unchanged. Leave it false where history exists (memory,
	// etcd), so that the replay is checked.
	StreamNoHistory bool

	// MinKeepAliveTTL, optional, is the smallest TTL the driver accepts for
	// KeepAlive writes and for locks, when that is above MinTTL: on
	// ZooKeeper both live as long as the session, so their TTL cannot be
	// below the session timeout. A smaller TTL must be a *kv.TTLError whose
	// Min is this value. Zero means MinTTL.
	MinKeepAliveTTL time.Duration

	// TTLSlack is how late past its TTL (after rounding) the backend may
	// remove an expired key, e.g. a reaper's interval. The suite waits
	// TTL+TTLSlack (plus a fixed margin for slow CI) before calling a key
	// overdue.
	TTLSlack time.Duration
}
