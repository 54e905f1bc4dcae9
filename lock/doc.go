// Package lock is a distributed mutex with a lost signal and fencing, on any
// kv.Store (etcd, Consul, ZooKeeper, memory).
//
// Guarantees, on every backend (pinned by the kv/kvtest lock cases and this
// package's tests):
//
//   - Mutual exclusion as seen by the server: at most one Mutex holds a key
//     at a time. Waiters wait on a server watch (no polling), on their
//     predecessor only where the backend queues waiters (no herd).
//   - A lost signal: Lost() closes when the hold ends for any reason (Unlock,
//     expiry, the store closed, the server unreachable for longer than the
//     renew deadline). The renew deadline is below the TTL, so a holder
//     whose server went away learns it before the server can give the lock
//     to someone else, provided its clock runs at the server's pace.
//   - A fencing token (Token) that strictly increases across successive
//     holders of a key, and guarded writes (GuardedPut, GuardedDelete) that
//     the server itself rejects once the hold has passed on: an etcd txn on
//     the contender key, a Consul txn with check-session, a ZooKeeper multi
//     with a version check on the contender node.
//
// What is not guaranteed: that the holder still holds the lock at any
// instant after checking. A process paused (GC, swap, SIGSTOP) for longer
// than the TTL wakes up believing it holds a lock the server has passed on;
// Lost() closes soon after it wakes, but anything it wrote elsewhere in the
// meantime is only safe if it went through a guarded write or carried the
// fencing token to a system that checks it.
//
// A Mutex is safe for concurrent use; Lock and Unlock are meant to be called
// by one owner at a time.
package lock
