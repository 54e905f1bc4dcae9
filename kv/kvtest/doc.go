// Package kvtest is the conformance suite of the kv contract, shipped with
// it like testing/fstest: a driver passes when
//
//	func TestConformance(t *testing.T) { kvtest.Run(t, harness) }
//
// passes against its real server. Run adds one subtest per case (118 for
// a kv.Streamer with history, 108 for a store without Streamer), each on
// its own key prefix "kvtest/<case>/<random>" with its own deadline, so a failure
// names the rule that broke and leaves the other cases' keys alone. No
// case is ever skipped: a Harness that lacks what a case needs fails.
//
// How cases run: those marked serial (goroutine counting, compaction) run
// first, one at a time; then all the others at once, from goroutines
// rather than t.Parallel, so that cases waiting for TTLs do not queue
// behind -test.parallel (GOMAXPROCS by default); cases that do not wait
// for TTLs share four slots so that timing checks are not starved on
// small machines. Total time is about the longest TTL case: roughly
// 3 x max(MinTTL, 1s) + TTLSlack.
//
// Choices the suite pins where backends used to disagree (see the ANCHORS
// notes in the repository):
//   - Close is idempotent and returns nil every time; afterwards every
//     Store, Locker and Streamer method returns kv.ErrClosed, except
//     Locker.Unlock, which returns nil (Close already released the lock and
//     Unlock of a lock not held is nil) and Token, which returns 0.
//   - A call with an ended ctx returns an error matching ctx.Err(), Watch
//     and WatchTree included (no channel is returned).
//   - Watch on a missing key starts with a nil Pair and stays open; a
//     delete or an expiry is an update with a nil Pair.
//   - Every stream (Watch, WatchTree, Events) open when its Store is closed
//     gets a last update whose Err matches kv.ErrClosed, then closes.
//   - Events from a compacted revision returns a channel whose first batch
//     carries a *kv.CompactedError, then closes.
//   - A stale AtomicDelete is kv.ErrKeyModified, never kv.ErrKeyNotFound.
//   - A guarded write by a holder that was killed and replaced fails with
//     kv.ErrLockLost or kv.ErrNotLocked and writes nothing.
//   - A guarded write with a TTL expires like any write, or is refused
//     with kv.ErrCallNotSupported and writes nothing.
//   - Lock bookkeeping is invisible to List, WatchTree, Events and
//     DeleteTree of the lock key's parent, and DeleteTree does not break a
//     held lock.
//
// Streamers without history (Harness.StreamNoHistory: ZooKeeper, Consul)
// may answer Events from an older revision with ErrCompacted, and are not
// given the burst case; the in-order case makes one change at a time for
// them as for everyone.
//
// Not pinned: whether a burst of writes to one key reaches a watcher as one
// update per write (Consul's blocking queries coalesce them; the suite
// writes one change at a time and waits for it); what a killed client's
// own calls return; the TTL granularity beyond MinTTL and TTLSlack.
//
// The suite leaks nothing when it passes: it cancels every stream it opens
// and closes every client. Run it in a package with goleak.VerifyTestMain
// to check the driver's side of that.
package kvtest
