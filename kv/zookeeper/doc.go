// Package zookeeper is the regent kv.Store and kv.Streamer for ZooKeeper
// 3.5+ (tested with 3.8), on github.com/go-zookeeper/zk v1.0.4.
//
// # Layout
//
// A key "a/b" is the znode Root/a/b (Root defaults to /regent; a chroot in
// the connect string is prepended). Intermediate znodes are directories:
// a key's data starts with a marker byte, a directory's data is empty, so
// List never returns a directory and an empty value is still a key. Lock
// contenders and the revision counter live under names starting with
// kv.ReservedSegmentPrefix, outside every user prefix. Key characters the
// server refuses in znode names (emoji and other runes above U+FFFF,
// U+D800..U+F8FF, U+007F..U+009F, U+FFF0..U+FFFF) and '%' are
// percent-encoded in znode names.
//
// LastIndex and Revision are the znode's mzxid: store-wide, never reused,
// so a stale pair never matches a key deleted and re-created. The server
// can only compare versions, though, and Stat.Version restarts when a
// znode is re-created: AtomicPut and AtomicDelete read the znode, compare
// its mzxid, then write at its version, and a refused write is decided
// again from a fresh read. So that versions never restart under a
// compare-and-swap, a Delete clears the key's data rather than removing
// its znode (which stays as a directory: DeleteTree removes those), and
// when regent replaces a znode (a key changing kind) the new one starts at
// the old version + 1 in the same multi. The cost is an empty znode per
// key ever deleted under a prefix until a DeleteTree. KeepAlive keys are
// the exception: their ephemeral znodes go with a delete, so that the
// registrations of a service that come and go leave nothing behind. Not
// guaranteed, therefore: an ephemeral or TTL znode removed (a KeepAlive
// key deleted, a session expired, a TTL run out) and created again within
// the one round trip between a compare-and-swap's read and write starts
// its versions over and can be mistaken for the one that was read.
//
// # TTL and KeepAlive
//
// A TTL key is a TTL znode (the server needs
// -Dzookeeper.extendedTypesEnabled=true). ZooKeeper counts the TTL from
// the last modification and deletes the znode on its container manager's
// pass, every znode.container.checkIntervalMs: 60 s by default, so a 1 s
// TTL key may live a minute on a default server; lower the interval if
// that matters. A TTL key with keys below it is never reaped.
//
// A KeepAlive key is an ephemeral znode of the Store's session: it goes
// when the session ends (Close, at once) or expires (a session timeout
// after the client vanished). Its TTL must therefore be at least the
// session timeout the server granted (it clamps Config.SessionTimeout to
// its own bounds); a shorter one is a *kv.TTLError whose Min is that
// timeout, since the key would outlive its client by more than its TTL.
// After a session expiry the Store re-creates its KeepAlive keys from its
// own record (the keys it wrote with KeepAlive and has not since deleted
// or overwritten; one that another client deleted meanwhile comes back
// too) and logs it; a key it cannot re-create is reported to
// Config.OnKeepAliveLost and logged. Keys written with a Locker's
// GuardedPut are never re-created: the lock that guarded them ended with
// the same session, and a plain create would bring a deposed holder's
// write back. Ephemeral znodes cannot have children: a key below a
// KeepAlive key is ErrCallNotSupported.
//
// # Reads
//
// A read is served by the member the session is connected to, which may
// be behind the leader (ZooKeeper's sequential consistency: a client
// always reads its own writes). With ReadOptions.Consistent a read barrier
// comes first (see Store.Get): a check-only multi that goes through Zab,
// so that the read follows every write acknowledged before it, on any
// member, and fails on a member that has lost its quorum. ZooKeeper's own
// sync does not guarantee that in 3.8. One barrier serves every
// Consistent read of the Store that joined before it was sent. The
// answers of writes that come from a read (ErrKeyNotFound, ErrKeyModified)
// and the lock's checks use the same barrier.
//
// # Watches and the event stream
//
// Watch, WatchTree and Events keep a copy of the watched tree current with
// one-shot data and child watches on every znode (go-zookeeper has no
// persistent recursive watches). The connection's events are taken from
// its callback, which sees every event in server order and never drops
// one. While the session lives, go-zookeeper re-arms the watches after a
// reconnect with the last zxid seen, so no change is lost; after a session
// expiry, Watch and WatchTree read the tree again and send its state, and
// Events ends with ErrCompacted. Events from the revision of a Snapshot of
// the same prefix on the same Store (within 30 s, 16 at most) continues
// that snapshot's watches; from another revision it replays what the
// stats prove (keys created since, under parents that never lost a
// child), or reports ErrCompacted. Directories are therefore never
// removed by Delete, only by DeleteTree: an empty directory that lost its
// keys is what tells "deleted since" from "never existed".
//
// Not guaranteed: ZooKeeper watch events carry no data, so the value is
// read after the event. A key written twice before its watch is re-armed
// (one round trip) is one Watch or WatchTree update, with the later
// value: those see every key's latest state, not every intermediate one.
// Events merges them the same way, as kv.Streamer allows for stores
// without history (the znode stats show it: a version or child-count
// jump, logged at debug level); the final state of every key is always
// delivered. A watch notification only means "read again": the read and
// its stats (czxid for a re-creation, mzxid for a change) decide what is
// sent, so a batch holds each key at most once, in its latest state.
// Deletes report an upper bound of the delete's zxid as revision: the
// parent's pzxid, or the czxid of the znode that replaced the deleted
// one; such a bound may exceed the revision of another key's change
// delivered in the next batch. After every reconnect the watched
// trees are read again and compared with their copies, because
// go-zookeeper re-arms watches on a best-effort basis.
//
// A batch's Revision R claims every key as it was at R. Where a read
// merged writes it cannot date (a version jump; children that came and
// went between two child lists; a listed child gone before it was read;
// a directory znode written since it was last seen, i.e. a key put and
// deleted unseen), the batch claims no revision inside that unknown span
// and holds the changes past it for a later step, so R lags a little
// behind the writes under contention. kvtest's concurrent-writers case
// checks it against the revisions of every put. Not guaranteed: under
// writes that never pause and outpace the stream's reads, no revision may
// ever be vouched for; after four such steps in a row the stream claims
// what it has caught up to anyway, merging as above, rather than hold
// everything for ever.
//
// # Memory
//
// A watched tree costs, per znode, its path and a 56-byte copy of the
// stats change detection compares, plus the two one-shot watches armed on
// it, which go-zookeeper v1.0.4 records client-side (a buffered channel
// and a map entry each, about 200 bytes). Snapshot and Events keep no
// values: they go into the pairs and events and the caller holds the only
// copy. Watch and WatchTree keep one, as every update repeats the state.
// Not guaranteed: the client-side record of an armed watch outlives the
// stream that armed it until the watch fires or the session ends
// (go-zookeeper cannot remove watches), so following and dropping a big
// prefix over and over on one Store grows that record.
//
// # Locks
//
// See Store.NewLock: protected ephemeral-sequential znodes, watch on the
// predecessor only, fencing token = czxid, guarded writes = multi with a
// version check of the lock znode. A lock lives as long as the session,
// so its TTL must be at least the granted session timeout. The holder
// confirms its znode (a read barrier, then an Exists) every third of RenewDeadline (default two thirds of
// the session timeout), and the lost channel closes when the znode is
// deleted, when the session expires, when the Store closes, and when no
// confirmation has been answered for RenewDeadline, counted from the send
// time of the last one that was: the server cannot expire the session
// sooner than a session timeout after receiving that request. A
// connection that drops and comes back within that time keeps the lock.
// Whenever a hold ends while its session lives (Unlock, a missed
// deadline), the contender znode is deleted in the background until it is
// gone or the session ends, so that a lost hold never blocks the next
// contender; after a missed deadline only max(T/4, 200ms) after the lost
// channel closed, the margin the holder has to stop before anyone else
// can take the lock. Unlock ends the hold at once and waits for that delete until
// its ctx ends, or one session timeout at most. A waiting Lock rides out
// reconnects and, after a session expiry, queues again.
//
// The Store's connection gives each handshake a third of SessionTimeout
// per server (at least 1 s): go-zookeeper alone would wait 6.7 times the
// session timeout on a server that accepted the connection but does not
// answer, such as one still starting up.
//
// # Concurrency and channels
//
// A Store is safe for concurrent use. Every channel it returns is closed
// by the Store, after ctx ends, after Close (following a terminal update
// with ErrClosed, delivered within one second if the reader still reads),
// or after an update with Err set. Sends block while the reader is slow
// and always give way to ctx; the events waiting meanwhile are bounded by
// the armed watches. Close ends the session, waits for every goroutine of
// the Store and is idempotent. Calls take ctx first; go-zookeeper takes
// none, so a call whose ctx ends returns ctx.Err() at once while the
// request may still be applied by the server.
//
// Wrapping an existing *zk.Conn is not offered: the Store must see every
// session event from go-zookeeper's callback, which is fixed when the
// connection is made, and must own the session whose end deletes its
// KeepAlive keys and locks.
package zookeeper
