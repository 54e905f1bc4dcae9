// Package informer keeps a typed, indexed, in-memory cache of the keys below
// a prefix of a kv.Store, and tells event handlers about every change: the
// informer layer of regent, after client-go's SharedIndexInformer.
//
//	inf, _ := informer.New(store, informer.Config[Pod]{Prefix: "pods", Decode: decodePod})
//	reg, _ := inf.AddEventHandler(informer.Handler[Pod]{OnAdd: ..., OnUpdate: ..., OnDelete: ...})
//	go inf.Run(ctx)
//	if err := inf.WaitForCacheSync(ctx); err != nil { ... } // says why not
//	pod, ok := inf.Get("pods/web-1")
//	<-reg.Synced() // the handler has had its OnAdd calls for the first list
//
// WaitForCacheSync is about the cache: once it returns, Get and List
// answer from a full list. It does not wait for the handlers, which get
// that list as OnAdd calls on their own goroutines: code that needs a
// handler's view (a config reader that applies the config in OnAdd, a
// test) waits on its Registration's Synced channel. Get answers absent
// before the first sync; Lookup tells "not synced" from "absent".
//
// Run lists the prefix with kv.Streamer.Snapshot and follows
// kv.Streamer.Events from the listed revision, so one change costs O(1)
// whatever the size of the prefix. On a store without kv.Streamer it
// follows WatchTree and diffs each state against the cache (O(prefix) per
// change). A transient stream error resumes from the last applied revision
// after an exponential backoff (800 ms to 30 s by default, reset by every
// good batch); kv.ErrCompacted (history gone, ZooKeeper session expired,
// Consul index reset) re-lists and diffs the list against the cache.
//
// # Guarantees
//
//   - Per key, every handler sees states in order, starting from the
//     handler's first view: a subsequence of the key's states that always
//     ends with its latest one ("latest state, at least once"). Which
//     intermediate states are seen depends on the backend (ZooKeeper and
//     Consul merge changes made in quick succession) and on the handler's
//     speed (below).
//   - Deletes the informer did not see as such (keys gone after a re-list,
//     keys deleted while a handler was behind, values that stopped
//     decoding) reach OnDelete with final=false and the last state that
//     handler saw: a tombstone, never a nil or a panic.
//   - A slow handler never blocks the informer, the cache or other
//     handlers, and never makes memory grow without bound. Each handler has
//     its own goroutine and a queue of Config.HandlerQueueSize
//     notifications (a few words each: objects are shared, not copied).
//     When the queue is full the handler is marked behind: the informer
//     stops queuing for it and keeps a map of the cache entries as they
//     were at that moment (one pointer per key; entries are immutable, so
//     this is exactly what the handler will have seen once its queue
//     drains). When it has drained, it gets the difference between that
//     map and the cache as adds, updates and tombstone deletes, then
//     follows events again. The catch-up is counted in
//     regent_informer_handler_catchups_total. In steady state a handler
//     costs its queue and nothing per key; each overflow costs one copy of
//     the cache's key -> entry map (pointers only), made under the
//     informer's lock, so a handler that is always behind costs O(keys)
//     per HandlerQueueSize events.
//   - Handlers added late (or before Run) first get the whole cache as
//     adds with isInitialList true, once the informer has synced; their
//     Registration's HasSynced turns true after that.
//   - A handler panic is recovered, logged and counted; the handler goes
//     on with its next notification.
//   - Decode (and Transform) errors never stop the informer: the error is
//     logged, counted and passed to Config.OnError, and the key is treated
//     as absent: not cached, and if it was cached, removed with a tombstone
//     delete (its last good object). An IndexFunc error leaves the object
//     cached but out of that index.
//   - Resync (Config.ResyncPeriod, with up to 10% jitter) replays the cache,
//     never the server, as OnUpdate(obj, obj), to each handler from its own
//     goroutine once its queue has drained: a resync never overflows a
//     queue.
//   - Read-your-writes: WaitForRevision(ctx, rev) returns once the cache
//     has applied every change up to rev (a written pair's Revision, or
//     kv.Streamer.Revision read after the write).
//   - Health: Check is nil only while the cache is synced and following the
//     store (a change or a progress notice within Config.StaleAfter, no stream
//     error since); otherwise it says why (ErrNotSynced, ErrStale). The cache
//     keeps serving its last state meanwhile: readers decide whether stale
//     data is good enough, a readiness probe reports it.
//   - WaitForCacheSync and WaitForRevision never hang silently: when ctx
//     ends, or Run returns, the error wraps ErrNotSynced, ctx.Err() or
//     Run's error and the last list or stream error, and says what the
//     informer was doing.
//   - A value that fails to decode makes its key absent (an OnDelete), or,
//     with Config.KeepLastGood, keeps the last object that decoded while
//     Check reports ErrDecode.
//
// # Concurrency and lifetime
//
// Every method is safe for concurrent use. Run blocks until its ctx ends,
// then stops and waits for every goroutine it started (one per handler and
// one for resync) before it returns ctx.Err(); it returns an error wrapping
// kv.ErrClosed if the store is closed under it. The informer returns no
// channels. Handlers are called from their own goroutine, one call at a
// time; Registration.Remove may be called from inside a handler.
//
// Cached objects are shared by the cache, the listers and every handler:
// treat them as read-only.
//
// # Not guaranteed
//
//   - Not every intermediate state is delivered (see above); reconcile on
//     the latest state, as EnqueueKeys does.
//   - Events of one store-wide revision (a transaction) are applied to the
//     cache at once, but handlers get them one key at a time.
//   - The cache may lag the store; use WaitForRevision when it must not.
//   - A handler that is behind, or catching up, misses the resyncs due
//     meanwhile except for the catch-up itself, which includes a resync of
//     the unchanged keys when one was due.
//   - Handlers of one informer are not called in any order relative to
//     each other.
//   - Run waits for handler calls in progress: a handler that never
//     returns keeps Run from returning. Handlers should honour their own
//     deadlines.
//   - With the WatchTree fallback, revisions are those the store reports
//     (zero where it has none), and every change costs a diff of the
//     whole prefix.
package informer
