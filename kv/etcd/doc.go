// Package etcd is the etcd v3 driver of regent's kv contract: a kv.Store and
// kv.Streamer on go.etcd.io/etcd/client/v3.
//
//	s, err := etcd.New(ctx, etcd.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
//
// or, around a client the caller keeps owning, etcd.NewFromClient(c, cfg).
// kv/etcd/embedded starts an in-process server when there is none.
//
// # Layout
//
// User key "a/b" is stored at "/<Root>/a/b" ("/a/b" without Root). The
// driver's own keys live below "/<Root>/__regent/": lock contenders at
// "__regent/locks/<key>/__regent/<lease id>". No user key or prefix can name
// a segment starting with "__regent", so internal keys never appear in List,
// WatchTree, Snapshot or Events results, and DeleteTree spares them even at
// the root. That holds at any depth: a Store whose Root lies below another's
// ("app" and "app/team") keeps its locks out of the outer Store's reads and
// DeleteTree, which reads the tree's keys to find internal subtrees and
// deletes around them in one guarded transaction.
//
// # Semantics
//
//   - LastIndex and Revision are both the key's ModRevision (store-wide).
//     Compare-and-swap is a transaction on it; create-only compares
//     CreateRevision with 0. A failed AtomicPut/AtomicDelete reads the key
//     back in the same transaction to tell ErrKeyModified from
//     ErrKeyNotFound.
//   - Reads are linearizable; ReadOptions.Consistent changes nothing.
//   - TTLs are leases, rounded up to whole seconds, at least MinTTL
//     (DefaultMinTTL, 2 s: etcd silently lengthens shorter leases). A Put
//     with a TTL grants a fresh lease (one extra round trip), so each Put
//     restarts the clock; the old lease expires by itself. A key written
//     with a TTL expires up to about one second late (etcd checks expiry
//     every 500 ms, then revokes through raft).
//   - KeepAlive keys share one lease per distinct TTL, renewed while the
//     Store lives and revoked by Close (the keys vanish at once). If the
//     lease is lost anyway (server unreachable longer than the TTL), the
//     driver grants a new one and writes the keys back where they are still
//     absent, logging the loss; a key somebody else wrote meanwhile is left
//     to them.
//   - Watch and WatchTree read the state, then watch from that read's
//     revision + 1. The first update is sent once the server has created
//     the watch. A lost connection is resumed by the etcd client from the
//     last revision delivered; when the server cancels a watch (compaction,
//     lost leader: watches require a leader) the driver re-reads and sends
//     the new state if it changed. WatchTree sends one full, sorted
//     snapshot per revision, maintained locally (no re-list per change).
//   - Events is one watch from after+1. Compaction ends it with a
//     *kv.CompactedError. While idle it asks for progress notifications
//     twice a second, so batches with Revision arrive at least every second.
//   - Locks: each Lock grants its own lease (TTL: LockOptions.TTL, else
//     DefaultLockTTL, 10 s) and creates its contender key in one
//     transaction; a waiter watches only the contender just ahead of it.
//     The fencing token is the contender key's CreateRevision; guarded
//     writes compare it in a transaction (ErrLockLost when it is gone). The
//     lease is renewed every TTL/3 (every RenewDeadline/3 if that is
//     shorter); the lost channel closes when the server says the lease is
//     gone, or when no renewal succeeded for LockOptions.RenewDeadline
//     (default 2/3 of the TTL), and in any case up to max(TTL/10, 200 ms)
//     before the earliest moment the server may expire it (both measured
//     from the send time of the last answered renewal), so a holder cut off
//     from the server learns of the loss before the server can hand the
//     lock over. A RenewDeadline that is negative or not below the TTL is a
//     *kv.TTLError.
//   - Errors are mapped in one place (errors.go): compaction to
//     ErrCompacted, oversized requests to ErrValueTooLarge, unavailable
//     members, lost leaders and timeouts to ErrNotReachable (wrapping the
//     original); a caller's ctx error passes through, and a passed deadline
//     also matches ErrNotReachable.
//
// # Concurrency and lifetimes
//
// A Store and its Lockers are safe for concurrent use. Every channel a
// Store returns is closed by the Store's goroutine that sends on it, after
// the caller's ctx ends, after a terminal update (Err set), or on Close;
// every send gives way to the caller's ctx. Close revokes the KeepAlive
// leases, unlocks held locks, ends every watch with an update carrying
// kv.ErrClosed, waits for all its goroutines, closes the client if New
// made it, and is idempotent; every call after it returns kv.ErrClosed.
//
// # Not guaranteed
//
//   - Close waits at most 2 s for a watcher that stopped reading to take
//     its ErrClosed update, then closes the channel without it; its revokes
//     give up after 3 s when the server is unreachable (leases then expire
//     within their TTL).
//   - Successive WatchTree updates share unchanged *kv.KVPair values: treat
//     them as read-only.
//   - A lock holder's safety relies on the local clock running at about the
//     server's rate during one TTL; a holder paused (GC, VM freeze) past
//     its TTL may act before it sees the lost channel close: use guarded
//     writes for anything that must not come from a deposed holder.
//   - A watch cancelled before the server confirmed creating it is kept
//     until that confirmation (at most 5 s) and only then cancelled (see
//     watchstream.go for why). Its goroutine, and Close, may wait that long.
package etcd
