// Package memory is the in-process reference implementation of the kv
// contract: kv.Store, kv.Streamer and kv.Locker, with nothing left out.
// It passes the whole kv/kvtest suite and is what examples and unit tests
// of the upper layers run against.
//
// A Backend plays the server; each Store from Backend.Client is one
// client, with its own KeepAlive keys and locks, as a separate process
// would have. New returns a Store on a Backend of its own.
//
//	b := memory.NewBackend()
//	s1, s2 := b.Client(), b.Client() // two "processes"
//
// Guarantees:
//   - Every type is safe for concurrent use.
//   - Revisions are store-wide and increase by one per write (a DeleteTree,
//     or a Close that removes KeepAlive keys, is one revision); LastIndex
//     and KVPair.Revision are both the revision of the key's last write. A
//     lock acquisition also takes a revision, which is its fencing token,
//     but leaves no event.
//   - TTLs are exact to the timer: a key expires TTL after its last write
//     (MinTTL is one millisecond); with KeepAlive, TTL after its client is
//     killed, and at once when its client is closed. Expiry is a delete,
//     seen by watchers and Events.
//   - Kill models a client cut off from its server: the server releases
//     the client's locks LockOptions.TTL (DefaultLockTTL if zero) after the
//     kill, and the holder gives them up first, LockOptions.RenewDeadline
//     (two thirds of the TTL if zero) after the kill: its lost channel
//     closes, Token is 0, guarded writes fail with kv.ErrLockLost.
//   - Watch, WatchTree and Events channels are unbuffered and closed by
//     the Store, after ctx ends, after a terminal update, or on Close or
//     Kill (terminal Err kv.ErrClosed, or kv.ErrNotReachable for Kill).
//     Each has one goroutine that reads the Backend's history at its
//     reader's pace: sends block on the reader (they never drop), a slow
//     reader delays only itself, and memory stays bounded by the history
//     limit (WithHistoryLimit).
//   - Events sends a progress batch every second (WithProgressInterval)
//     while idle.
//   - Close releases the client's locks, deletes its KeepAlive keys, ends
//     its streams and waits for their goroutines; it is idempotent.
//
// Not guaranteed:
//   - A watcher that falls behind by more than the history limit (or past
//     a Compact) gets the current state next, not every intermediate
//     state; an Events subscriber gets kv.ErrCompacted instead.
//   - Close waits at most about a second per stream whose reader neither
//     reads nor cancels before giving up on its terminal update.
//   - Nothing is persisted: a Backend lives in one process.
package memory
