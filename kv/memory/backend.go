package memory

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/btree"
	"go.uber.org/zap"

	"github.com/regentkv/regent/clock"
	"github.com/regentkv/regent/kv"
)

// Backend is the shared state that Stores from Client act on, like a server
// that several processes connect to. All state is guarded by one mutex that
// is never held while a channel send is pending: readers that fall behind
// only delay themselves.
type Backend struct {
	opts options

	mu        sync.Mutex
	closed    bool
	rev       uint64                // revision of the last change
	data      map[string]*entry     // user keys; lock state lives in locks
	keys      *btree.BTreeG[string] // the keys of data, ordered, for range scans
	hist      []record              // changes with rev > compacted, in order
	compacted uint64                // every change up to it is forgotten
	changed   chan struct{}         // closed and replaced on every change
	locks     map[string]*lockState
}

// entry is one stored key. A write always installs a new entry, so an
// expiry timer can tell by identity whether its key was rewritten.
type entry struct {
	pair  *kv.KVPair // immutable once stored; callers get copies
	owner *Store     // non-nil for KeepAlive keys while the owner lives
	ttl   time.Duration
	timer clock.Timer
}

// record is one change: a put (pair set) or a delete (pair nil) of key.
type record struct {
	rev  uint64
	key  string
	pair *kv.KVPair
}

// NewBackend returns an empty store shared by the Stores its Client method
// returns.
func NewBackend(opts ...Option) *Backend {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	return &Backend{
		opts:    o,
		data:    make(map[string]*entry),
		keys:    btree.NewOrderedG[string](16),
		changed: make(chan struct{}),
		locks:   make(map[string]*lockState),
	}
}

// Client returns a new Store on b: a separate client as far as KeepAlive
// keys and locks are concerned. Closing it does not close b.
func (b *Backend) Client() *Store {
	return newStore(b, false)
}

// Close stops b's expiry timers; Stores on it keep working without TTL
// expiry. It exists so that a test can end with no timer pending, and is
// idempotent.
func (b *Backend) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, e := range b.data {
		if e.timer != nil {
			e.timer.Stop()
		}
	}
	for _, l := range b.locks {
		if l.timer != nil {
			l.timer.Stop()
		}
	}
}

// Revision returns the revision of the last change.
func (b *Backend) Revision() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rev
}

// Compact forgets the history up to and including rev (capped at the
// current revision): Events from an older revision then report
// kv.ErrCompacted, and watchers that lag behind it resynchronise.
func (b *Backend) Compact(rev uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rev = min(rev, b.rev)
	if rev <= b.compacted {
		return
	}
	i := sort.Search(len(b.hist), func(i int) bool { return b.hist[i].rev > rev })
	b.hist = append([]record(nil), b.hist[i:]...)
	b.compacted = rev
	b.broadcastLocked()
}

// broadcastLocked wakes every goroutine waiting for a change.
func (b *Backend) broadcastLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// putLocked stores a new version of key at a new revision.
func (b *Backend) putLocked(key string, value []byte, opts *kv.WriteOptions, owner *Store) *kv.KVPair {
	b.rev++
	p := &kv.KVPair{Key: key, Value: append([]byte{}, value...), LastIndex: b.rev, Revision: b.rev}
	if old := b.data[key]; old == nil {
		b.keys.ReplaceOrInsert(key)
	} else if old.timer != nil {
		old.timer.Stop()
	}
	e := &entry{pair: p}
	if opts != nil && opts.TTL > 0 {
		e.ttl = opts.TTL
		if opts.KeepAlive {
			e.owner = owner
		} else {
			b.armLocked(key, e)
		}
	}
	b.data[key] = e
	b.appendLocked(record{rev: b.rev, key: key, pair: p})
	b.broadcastLocked()
	return p
}

// deleteLocked removes keys, all at one new revision.
func (b *Backend) deleteLocked(keys ...string) {
	if len(keys) == 0 {
		return
	}
	b.rev++
	for _, k := range keys {
		if e := b.data[k]; e != nil && e.timer != nil {
			e.timer.Stop()
		}
		delete(b.data, k)
		b.keys.Delete(k)
		b.appendLocked(record{rev: b.rev, key: k})
	}
	b.broadcastLocked()
}

// armLocked schedules the expiry of e, TTL from now.
func (b *Backend) armLocked(key string, e *entry) {
	if b.closed {
		return
	}
	e.timer = b.opts.clock.AfterFunc(e.ttl, func() { b.expire(key, e) })
}

func (b *Backend) expire(key string, e *entry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.data[key] != e {
		return // rewritten or deleted since the timer was armed
	}
	b.opts.logger.Debug("memory: key expired", zap.String("key", key))
	b.deleteLocked(key)
}

// appendLocked adds r to the history and trims the history to the limit.
// Trimming happens in chunks of a quarter of the limit so that its copy is
// amortised, and never splits one revision.
func (b *Backend) appendLocked(r record) {
	b.hist = append(b.hist, r)
	limit := b.opts.historyLimit
	if len(b.hist) <= limit+limit/4 {
		return
	}
	cut := len(b.hist) - limit
	for cut < len(b.hist) && b.hist[cut].rev == b.hist[cut-1].rev {
		cut++
	}
	b.compacted = b.hist[cut-1].rev
	b.hist = append([]record(nil), b.hist[cut:]...)
}

// sinceLocked returns the index of the first record with a revision above
// rev.
func (b *Backend) sinceLocked(rev uint64) int {
	return sort.Search(len(b.hist), func(i int) bool { return b.hist[i].rev > rev })
}

// belowLocked calls f, in key order, for every key strictly below prefix
// until f returns false. It visits only those keys: "p/" up to, not
// including, "p0" ('0' follows '/'), so "pq" and "p" are never touched.
func (b *Backend) belowLocked(prefix string, f func(k string, e *entry) bool) {
	visit := func(k string) bool { return f(k, b.data[k]) }
	if prefix == "" {
		b.keys.Ascend(visit)
		return
	}
	b.keys.AscendRange(prefix+"/", prefix+"0", visit)
}

// listLocked returns copies of the pairs strictly below prefix, sorted.
func (b *Backend) listLocked(prefix string) []*kv.KVPair {
	out := make([]*kv.KVPair, 0)
	b.belowLocked(prefix, func(_ string, e *entry) bool {
		out = append(out, clonePair(e.pair))
		return true
	})
	return out
}

func clonePair(p *kv.KVPair) *kv.KVPair {
	if p == nil {
		return nil
	}
	c := *p
	if p.Value != nil {
		c.Value = append([]byte{}, p.Value...)
	}
	return &c
}

func compactedErr(requested, compacted uint64) error {
	return fmt.Errorf("memory: %w", &kv.CompactedError{Requested: requested, Compacted: compacted})
}
