package informer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
)

// Informer is a cache of the keys below a prefix, decoded into T, kept up to
// date from the store's event stream, with indexes and event handlers. Its
// methods are safe for concurrent use.
type Informer[T any] struct {
	store    kv.Store
	streamer kv.Streamer // nil: follow WatchTree instead
	cfg      Config[T]
	log      *zap.Logger
	met      *informerMetrics

	mu          sync.RWMutex
	c           cache[T]
	synced      bool
	rev         uint64           // every change up to rev is applied
	progress    chan struct{}    // closed and replaced when rev, synced or lastErr change
	lastErr     error            // of the last failed list or stream attempt
	badKeys     map[string]error // KeepLastGood: keys served from an older value, and why
	attempts    int              // list attempts so far
	heard       time.Time        // when the store last sent a change, a list or a progress notice
	handlers    []*registration[T]
	nextHandler int
	running     bool
	stopped     bool
	runErr      error // what Run returned, once stopped
	runCtx      context.Context

	wg sync.WaitGroup // handler and resync goroutines
}

// New returns an informer of store's keys below cfg.Prefix. It does no I/O:
// Run lists and follows the prefix.
func New[T any](store kv.Store, cfg Config[T]) (*Informer[T], error) {
	if store == nil {
		return nil, fmt.Errorf("%w: store is nil", ErrInvalidConfig)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	inf := &Informer[T]{
		store:    store,
		cfg:      cfg,
		log:      cfg.Logger.With(zap.String("informer", cfg.Name)),
		met:      newInformerMetrics(cfg.Metrics, cfg.Name),
		c:        newCache(cfg.Indexers),
		progress: make(chan struct{}),
	}
	inf.streamer, _ = store.(kv.Streamer)
	return inf, nil
}

// Run lists the prefix and follows it until ctx ends, then stops every
// handler goroutine and returns ctx.Err(). It returns early, with an error
// wrapping kv.ErrClosed, if the store is closed. It may be called once
// (ErrAlreadyRunning otherwise).
func (inf *Informer[T]) Run(ctx context.Context) error {
	inf.mu.Lock()
	if inf.running || inf.stopped {
		inf.mu.Unlock()
		return ErrAlreadyRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	inf.running, inf.runCtx = true, ctx
	for _, r := range inf.handlers {
		inf.wg.Add(1)
		go r.run(ctx)
	}
	inf.mu.Unlock()
	if inf.cfg.ResyncPeriod > 0 {
		inf.wg.Add(1)
		go inf.resyncLoop(ctx)
	}

	var err error
	if inf.streamer != nil {
		err = inf.stream(ctx)
	} else {
		err = inf.watchTree(ctx)
	}

	inf.mu.Lock()
	inf.running, inf.stopped, inf.runErr = false, true, err
	inf.broadcastLocked() // waiters return now, with Run's error
	inf.mu.Unlock()
	cancel()
	inf.wg.Wait()
	inf.log.Info("informer stopped", zap.Error(err))
	return err
}

// fail records why the informer is not (or no longer) following the store,
// for WaitForCacheSync's error.
func (inf *Informer[T]) fail(err error) {
	inf.mu.Lock()
	inf.lastErr = err
	inf.broadcastLocked()
	inf.mu.Unlock()
}

func (inf *Informer[T]) broadcastLocked() {
	close(inf.progress)
	inf.progress = make(chan struct{})
}

// HasSynced reports whether the cache holds a full list of the prefix.
func (inf *Informer[T]) HasSynced() bool {
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	return inf.synced
}

// LastSyncedRevision returns the store revision up to which every change
// has been applied to the cache (0 before the first sync, and on stores
// without revisions).
func (inf *Informer[T]) LastSyncedRevision() uint64 {
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	return inf.rev
}

// WaitForCacheSync waits until the cache has synced, ctx ends or Run
// returns. Then the error wraps ErrNotSynced and ctx.Err() or Run's error
// (kv.ErrClosed when the store was closed), and the last list error, if
// any, and says why the cache has not synced. A handler's own view of the
// first list is Registration.Synced: WaitForCacheSync does not wait for
// the handlers' initial OnAdd calls.
func (inf *Informer[T]) WaitForCacheSync(ctx context.Context) error {
	return inf.waitFor(ctx, func() bool { return inf.synced }, "waiting for the first sync")
}

// WaitForRevision waits until the cache has applied every change up to rev
// (read-your-writes: pass the revision of your own write, or
// kv.Streamer.Revision read after it), or ctx ends, like WaitForCacheSync.
func (inf *Informer[T]) WaitForRevision(ctx context.Context, rev uint64) error {
	return inf.waitFor(ctx, func() bool { return inf.synced && inf.rev >= rev },
		fmt.Sprintf("cache not caught up to revision %d", rev))
}

func (inf *Informer[T]) waitFor(ctx context.Context, done func() bool, what string) error {
	for {
		inf.mu.RLock()
		ok, ch := done(), inf.progress
		inf.mu.RUnlock()
		if ok {
			return nil
		}
		inf.mu.RLock()
		stopped, runErr := inf.stopped, inf.runErr
		inf.mu.RUnlock()
		if stopped {
			return inf.whyNot(runErr, what)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return inf.whyNot(ctx.Err(), what)
		}
	}
}

func (inf *Informer[T]) whyNot(ctxErr error, what string) error {
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	switch {
	case !inf.running && !inf.stopped:
		return fmt.Errorf("%w: %s: Run has not been called: %w", ErrNotSynced, what, ctxErr)
	case inf.stopped:
		runErr := inf.runErr
		if runErr == nil {
			runErr = errors.New("Run returned nil")
		}
		return fmt.Errorf("%w: %s: Run has returned: %w", ErrNotSynced, what, runErr)
	case !inf.synced && inf.lastErr != nil:
		return fmt.Errorf("%w: %s: no successful list yet (%d attempts): last error: %w: %w",
			ErrNotSynced, what, inf.attempts, inf.lastErr, ctxErr)
	case !inf.synced:
		return fmt.Errorf("%w: %s: first list still in progress: %w", ErrNotSynced, what, ctxErr)
	case inf.lastErr != nil:
		return fmt.Errorf("%w: %s: at revision %d, stream interrupted: last error: %w: %w",
			ErrNotSynced, what, inf.rev, inf.lastErr, ctxErr)
	}
	return fmt.Errorf("%w: %s: at revision %d: %w", ErrNotSynced, what, inf.rev, ctxErr)
}

// decode turns a pair into a cache entry, reporting a failure. into, when
// not nil, is where the entry is built (see replace).
func (inf *Informer[T]) decode(p *kv.KVPair, into *entry[T]) (*entry[T], error) {
	obj, err := inf.cfg.Decode(p.Key, p.Value)
	if err == nil && inf.cfg.Transform != nil {
		obj, err = inf.cfg.Transform(p.Key, obj)
	}
	if err != nil {
		err = fmt.Errorf("%w: key %q at revision %d: %w", ErrDecode, p.Key, p.Revision, err)
		inf.report(p.Key, err)
		return nil, err
	}
	e := into
	if e == nil {
		e = new(entry[T])
	}
	*e = entry[T]{obj: obj, rev: p.Revision, sum: valueSum(p.Value)}
	for _, err := range inf.c.index(p.Key, e) {
		inf.report(p.Key, err)
	}
	return e, nil
}

// keepLastGood reports whether key, whose new value failed to decode with
// err, keeps its cached object (Config.KeepLastGood), recording why.
// Called with mu held.
func (inf *Informer[T]) keepLastGoodLocked(key string, err error) bool {
	if !inf.cfg.KeepLastGood || inf.c.items[key] == nil {
		return false
	}
	if inf.badKeys == nil {
		inf.badKeys = make(map[string]error)
	}
	inf.badKeys[key] = err
	return true
}

func (inf *Informer[T]) report(key string, err error) {
	inf.met.decodeError()
	inf.log.Warn("cannot cache key", zap.String("key", key), zap.Error(err))
	if inf.cfg.OnError != nil {
		inf.cfg.OnError(key, err)
	}
}

// setLocked changes key to e (nil: gone) and notifies the handlers. final
// says whether a delete was seen as such.
func (inf *Informer[T]) setLocked(key string, e *entry[T], final bool) {
	old := inf.c.items[key]
	if old == nil && e == nil {
		return
	}
	n := note[T]{key: key, old: old, new: e, final: final}
	switch {
	case old == nil:
		n.kind = noteAdd
	case e == nil:
		n.kind = noteDelete
	default:
		n.kind = noteUpdate
	}
	for _, r := range inf.handlers {
		r.push(n, inf.c.items)
	}
	inf.c.set(key, e)
	inf.met.event(old != nil, e != nil)
}

// replace makes the cache equal to pairs, read at rev: the first sync, a
// re-list, or a state of the WatchTree fallback. Keys missing from pairs are
// deleted, final only when deletes are known to have been seen as such.
func (inf *Informer[T]) replace(pairs []*kv.KVPair, rev uint64, final bool) {
	// One allocation for all the entries of a list: fewer objects for the
	// GC and no per-object malloc overhead. An entry replaced later keeps
	// its slab alive until the slab's last entry goes, so at worst the
	// entries of one list stay twice: bounded, and cheaper than 100k
	// separate allocations.
	slab := make([]entry[T], len(pairs))
	entries := make([]*entry[T], len(pairs))
	errs := make([]error, len(pairs))
	for i, p := range pairs {
		entries[i], errs[i] = inf.decode(p, &slab[i])
	}
	inf.mu.Lock()
	defer inf.mu.Unlock()
	inf.badKeys = nil // rebuilt from this list
	for i, p := range pairs {
		if entries[i] == nil && inf.keepLastGoodLocked(p.Key, errs[i]) {
			entries[i] = inf.c.items[p.Key] // the cached object stays
		}
	}
	if len(inf.c.items) == 0 {
		inf.c.items = make(map[string]*entry[T], len(pairs))
	} else {
		keep := make(map[string]struct{}, len(pairs))
		for i, p := range pairs {
			if entries[i] != nil {
				keep[p.Key] = struct{}{}
			}
		}
		for k := range inf.c.items {
			if _, ok := keep[k]; !ok {
				inf.setLocked(k, nil, final && !inf.undecodable(pairs, k))
			}
		}
	}
	for i, p := range pairs {
		e, old := entries[i], inf.c.items[p.Key]
		if e != nil && (old == nil || old.rev != e.rev || old.sum != e.sum) {
			inf.setLocked(p.Key, e, final)
		}
	}
	first := !inf.synced
	inf.synced = true
	inf.rev = rev
	inf.lastErr = nil
	inf.heard = inf.cfg.Clock.Now()
	inf.broadcastLocked()
	inf.met.synced(rev)
	if first {
		for _, r := range inf.handlers {
			r.signal()
		}
	}
}

// undecodable reports whether key is in pairs (so it was dropped for
// failing to decode, not deleted). Only on the rare path of a delete found
// by a diff.
func (inf *Informer[T]) undecodable(pairs []*kv.KVPair, key string) bool {
	_, found := slices.BinarySearchFunc(pairs, key, func(p *kv.KVPair, k string) int { return strings.Compare(p.Key, k) })
	return found
}

// apply applies one batch of the stream.
func (inf *Informer[T]) apply(b kv.EventBatch) {
	entries := make([]*entry[T], len(b.Events))
	errs := make([]error, len(b.Events))
	for i, ev := range b.Events {
		if ev.Type == kv.EventPut {
			entries[i], errs[i] = inf.decode(ev.Pair, nil)
		}
	}
	inf.mu.Lock()
	defer inf.mu.Unlock()
	for i, ev := range b.Events {
		switch ev.Type {
		case kv.EventPut:
			if entries[i] == nil && inf.keepLastGoodLocked(ev.Pair.Key, errs[i]) {
				continue // the last good object stays, reported by Check
			}
			delete(inf.badKeys, ev.Pair.Key)
			// An undecodable new value removes the key: a tombstone.
			inf.setLocked(ev.Pair.Key, entries[i], entries[i] != nil)
		case kv.EventDelete:
			delete(inf.badKeys, ev.Pair.Key)
			inf.setLocked(ev.Pair.Key, nil, true)
		}
	}
	if b.Revision > inf.rev {
		inf.rev = b.Revision
		inf.met.synced(b.Revision)
	}
	inf.lastErr = nil
	inf.heard = inf.cfg.Clock.Now()
	inf.broadcastLocked()
}

var errNoStream = errors.New("informer: stream ended without an error")
