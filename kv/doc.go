// Package kv defines the store contract that every regent backend
// implements: etcd v3 (kv/etcd), Consul (kv/consul), ZooKeeper
// (kv/zookeeper) and an in-process store (kv/memory).
//
// The contract is pinned by the conformance suite in kv/kvtest, which every
// driver runs against its real server. What it guarantees, on every backend:
//
//   - Keys are slash-separated paths with one canonical form (NormalizeKey);
//     a bad key is ErrInvalidKey, never a panic. A prefix names a directory:
//     List("a") returns "a/b" but never "ab/c".
//   - Errors are the sentinels of this package, wrapped with %w: a missing
//     key is ErrKeyNotFound from Get, Delete and AtomicDelete alike; a
//     compare-and-swap tells ErrKeyExists, ErrKeyModified and
//     ErrKeyNotFound apart.
//   - Values are never nil (ErrNilValue) and at most MaxValueSize bytes
//     (ErrValueTooLarge); empty and binary values round-trip.
//   - TTLs: a key written with a TTL is gone within the TTL (rounded up to
//     the backend's granularity) after its last write; with KeepAlive it
//     lives while its Store lives and is gone within the TTL after the
//     Store dies. A TTL the backend cannot honour is a *TTLError.
//   - Watches start with the current state, then report every change in
//     order, deletes included, with nothing lost between the two. Their
//     channels are closed by the store, after ctx ends or after a terminal
//     update that carries the error; the goroutine behind them has exited
//     by then. Errors are never swallowed.
//   - Locks have a lost signal, a fencing token that increases across
//     holders, and guarded writes checked by the server; their internal
//     keys never appear in List, WatchTree, DeleteTree or Streamer results.
//   - After Close every call returns ErrClosed.
//
// Stores that also implement Streamer offer a revisioned event stream that
// resumes from a revision and reports compaction with ErrCompacted.
package kv
