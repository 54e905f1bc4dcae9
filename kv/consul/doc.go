// Package consul is the regent store on Consul's KV API (open-source
// Consul, tested against 1.14): a kv.Store and a kv.Streamer.
//
// # Layout
//
// User key "a/b" is Consul key "<Root>/a/b" (Root defaults to "regent").
// Lock keys live at "__regent/<Root>/locks/<key>", outside Root, so List,
// WatchTree, DeleteTree and Events of any user prefix never see them. Keys
// under Root that are not valid regent keys (written by other tools) are
// left out of results. Values are stored as given: no Flags, no envelope.
//
// The ACL token needs key_prefix write on "<Root>/" and on
// "__regent/<Root>/", and session_prefix write (sessions carry TTL keys and
// locks). A refusal matches ErrPermissionDenied.
//
// # Guarantees
//
// A Store is safe for concurrent use. Every call takes ctx first and
// returns as soon as it ends (blocking queries carry it, so cancelling a
// watch does not wait for the query's wait time). Errors wrap the kv
// sentinels; ACL refusals also match ErrPermissionDenied.
//
//   - Reads: by default Consul's default mode (served by the leader, which
//     can be stale briefly around a leader change). With
//     ReadOptions.Consistent, Get and List are a transaction with a no-op
//     write, through raft, so linearizable (see readThroughRaft for why
//     Consul's ?consistent mode is not).
//   - CAS: AtomicPut and AtomicDelete are one transaction of checks plus
//     the write; which check failed tells ErrKeyExists, ErrKeyNotFound and
//     ErrKeyModified apart exactly. LastIndex and Revision are the key's
//     ModifyIndex, a raft index: ordered across keys.
//   - TTL: Consul has no per-key TTL. A TTL key is locked by a session with
//     behaviour "delete"; the server deletes it when the session is
//     invalidated. Consul invalidates a session twice its TTL after its
//     creation or last renewal (a timer on the leader), so a TTL t becomes
//     a session TTL of t/2, rounded up to the nanosecond (the server takes
//     any Go duration): the key is gone t after its session was created,
//     which is just before the write, late only by the raft apply of the
//     invalidation (milliseconds; the suite allows 500ms). Without
//     KeepAlive each write has its own session that nobody renews; with
//     KeepAlive the Store shares one session per TTL and renews it every
//     t/6 until Close, which destroys it (the keys vanish at once); a
//     client that died takes its KeepAlive keys with it at most t after
//     its last renewal. A Store that could not renew for t (cut off from
//     Consul) loses the session and its keys; once it reaches Consul again
//     it writes them back on a new session, each only if still absent
//     (keys written under a lock, by GuardedPut, are not restored), as the
//     etcd and ZooKeeper drivers do. TTLs range from 2 x Config.SessionTTLMin
//     (Store.MinTTL: 20s on a server with Consul's default
//     session_ttl_min of 10s) to 48h (twice Consul's 24h session
//     maximum); outside that, a *kv.TTLError.
//   - Watches use blocking queries (see blocker in blocking.go): the first
//     state is read before Watch returns; the index resets when it goes
//     backwards; answers that bring nothing new are backed off (a missing
//     key or an empty prefix is woken by every write in the store, so this
//     is the loop's rate limit, at most ~20 queries a second); transient
//     errors are retried for Config.RetryTimeout, then sent in-band.
//     Watches share blocking queries (see watchhub.go): the watches of one
//     key share a Get; those of keys in one directory share a Get while
//     one key is watched there, a List of the directory once two are, so
//     N watches hold one request and one connection, not N, and do not
//     reach the agent's http_max_conns_per_client. A directory whose
//     listing is far bigger than its watched keys (more than 64 + 16 per
//     key, while fewer than 32 keys are watched there), or whose listing
//     the token may not make, gets a Get per watched key instead, up to
//     32 of them (then a List again) where listing is allowed; keys right
//     below the root always do, and so do the keys of a directory the
//     token may not list, without a bound. The shared
//     query's errors reach every watch of it, as a lone watch's did. A
//     Watch's updates only move forward (by ModifyIndex) whatever the
//     order of its join, its first read and the shared answers. A List of
//     a big directory is the cost: with 10,000 watched keys in one
//     directory a change waits 0.1-0.2 s for the listing (see
//     docs/benchmarks.md).
//   - Put is a transaction (delete + set), not a plain PUT: a plain PUT
//     would keep a TTL session on the key, and with it the old expiry.
//   - Locks: see locker in lock.go. A dead holder's lock is free TTL after
//     its last renewal (the session's TTL is half the lock's, as above).
//     The lost channel closes at once when the session is gone or the key
//     taken, and after RenewDeadline without a successful renewal, counted
//     from the send time of the last renewal that succeeded: before the
//     earliest moment the server may expire the session, by at least
//     max(TTL/10, 200ms) (a longer RenewDeadline is shortened to that).
//     The fencing token is the ModifyIndex at acquisition; GuardedPut and
//     GuardedDelete carry a check-session.
//   - Several addresses: a request moves on to the next agent only when no
//     connection could be opened, so no request is ever applied twice.
//
// # Channels
//
// Watch, WatchTree and Events channels are created, sent on and closed by
// the Store's goroutine for that watch. Sends block while the reader is
// slow and give way to ctx; a Watch or WatchTree then waits to query
// again, an Events stream keeps polling into a queue of 256 batches first. The channel is
// closed after ctx ends, after a terminal update carrying Err, or on Close
// (after an ErrClosed update that is offered to the reader for 2s; after a
// kill, kv.ErrNotReachable). Lost channels of locks are closed by the
// Locker (on Unlock, loss or the Store's Close).
//
// # Not guaranteed
//
//   - Expiry is not exact after a leader change: a new Consul leader
//     restarts every session's timer, so a TTL key or a dead holder's lock
//     may live up to a TTL longer. Config.SessionTTLMin must match the
//     servers' session_ttl_min: if it is lower, a short TTL is refused by
//     the server (an error, not a silent change).
//   - Watches and Events coalesce: Consul keeps no history, so changes that
//     happen between two answers of a blocking query surface as the latest
//     state of each key. Every state reported is a real state, in order,
//     but intermediate ones can be skipped (client-go's "latest state, at
//     least once"). Events are computed by diffing consecutive listings by
//     ModifyIndex: O(keys below the prefix) per change.
//   - Events can resume only from a revision whose state the Store knows
//     (0, the current state, or a recent Snapshot or stream of this Store);
//     any other start reports kv.ErrCompacted, and so does an index that
//     goes backwards (snapshot restore). One exception: a prefix that is
//     empty when the stream starts is taken as empty at the start revision
//     too, because Consul answers for an empty prefix with the store-wide
//     index, which cannot tell "never had keys" from "keys deleted since";
//     keys that existed at that revision and were deleted before the
//     stream started are then not reported. Starting from a Snapshot's
//     revision never has this gap.
//   - Snapshot, Revision, Events' listings and Consistent watches use
//     Consul's "?consistent" mode, not the raft barrier of Consistent Get
//     and List: a barrier is a write, and an informer or a config reader
//     must work with a read-only token. In the moments after a leader
//     stall, that mode can answer from a deposed leader (see
//     readThroughRaft): a Snapshot or a Revision can then be older than a
//     write another client already had acknowledged. Nothing is lost: the
//     write's index is above the Snapshot's revision, so the Events that
//     follow it deliver the write; only a read-your-writes wait on such a
//     Revision can end before the write is seen. For a linearizable point
//     read, use Get or List with ReadOptions.Consistent.
//   - Values over about 380 KiB do not fit Consul's transaction limit
//     (txn_max_req_len, 512 KiB of base64): Put and AtomicPut take the plain
//     KV endpoint for them, TTL and guarded writes refuse them with
//     kv.ErrValueTooLarge.
package consul
