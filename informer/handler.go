package informer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// Handler receives an informer's notifications. Every field may be nil. The
// calls of one Handler come from one goroutine of its own, one at a time;
// objects are shared with the cache: treat them as read-only.
type Handler[T any] struct {
	// Name labels the handler's logs and metrics. Default "handler-<n>".
	Name string
	// OnAdd: key appeared. isInitialList is true for the adds that bring
	// the handler from nothing to the cache's state when it starts (the
	// first list, or the synthetic adds of a handler added later).
	OnAdd func(key string, obj T, isInitialList bool)
	// OnUpdate: key changed from old to new. On a resync old and new are
	// the same object, unless OnResync is set.
	OnUpdate func(key string, old, new T)
	// OnResync, optional: key was replayed unchanged (Config.ResyncPeriod,
	// or the catch-up of a handler that was behind). Nil: resyncs go to
	// OnUpdate. A controller queues these at low priority.
	OnResync func(key string, obj T)
	// OnDelete: key is gone; last is the last state this handler saw. final
	// is true when the informer saw the delete itself in the stream, right
	// after last as far as the stream told (backends that coalesce changes,
	// ZooKeeper and Consul, may have merged away states in between). final
	// false is a tombstone (client-go's DeletedFinalStateUnknown): the key
	// vanished while the informer was disconnected or the handler was
	// behind, or its value stopped decoding; states between last and the
	// delete were missed.
	OnDelete func(key string, last T, final bool)
}

// Registration is a handler added to an informer.
type Registration interface {
	// Name is the handler's name.
	Name() string
	// HasSynced reports whether the handler has been given the whole cache
	// as of the informer's first sync (or, for a handler added later, as of
	// its registration).
	HasSynced() bool
	// Synced is closed (by the handler's goroutine) when HasSynced turns
	// true; it is never closed if Run ends first.
	Synced() <-chan struct{}
	// Remove stops delivery: no call to the handler starts after Remove
	// returns (a call in progress finishes). It may be called from within
	// the handler, and more than once.
	Remove()
}

type noteKind uint8

const (
	noteAdd noteKind = iota
	noteUpdate
	noteDelete
	noteResync
)

// note is one notification for a handler. Entries are immutable, so a
// note costs a few words whatever the size of the objects.
type note[T any] struct {
	kind     noteKind
	final    bool
	initial  bool
	key      string
	old, new *entry[T]
}

// ring is a fixed-size FIFO of notes: a handler's bounded queue.
type ring[T any] struct {
	buf     []note[T]
	head, n int
}

func (q *ring[T]) push(n note[T]) {
	q.buf[(q.head+q.n)%len(q.buf)] = n
	q.n++
}

func (q *ring[T]) pop() note[T] {
	n := q.buf[q.head]
	q.buf[q.head] = note[T]{} // let the entries go
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return n
}

// registration is one handler: its queue, its goroutine, and, while it is
// behind, what it will have seen once its queue drains.
type registration[T any] struct {
	inf  *Informer[T]
	h    Handler[T]
	name string
	met  *handlerMetrics

	mu sync.Mutex
	q  ring[T]
	// behind: the queue overflowed (or the handler has not been given the
	// cache yet); notes are no longer queued, and once the queue drains
	// the handler catches up by diffing snap against the cache.
	behind      bool
	snap        map[string]*entry[T] // nil: the handler has seen nothing
	initialDone bool
	// resync: a resync is due; it is served, like a catch-up, once the
	// queue has drained, from the cache as it is then.
	resync bool

	synced   atomic.Bool
	syncedCh chan struct{}
	removed  atomic.Bool
	wake     chan struct{} // capacity 1: a pending wake-up
	stop     chan struct{} // closed by Remove
	stopOnce sync.Once
}

func (r *registration[T]) Name() string            { return r.name }
func (r *registration[T]) HasSynced() bool         { return r.synced.Load() }
func (r *registration[T]) Synced() <-chan struct{} { return r.syncedCh }

func (r *registration[T]) Remove() {
	r.stopOnce.Do(func() {
		r.removed.Store(true)
		inf := r.inf
		inf.mu.Lock()
		inf.handlers = slices.DeleteFunc(inf.handlers, func(x *registration[T]) bool { return x == r })
		inf.mu.Unlock()
		close(r.stop)
		inf.met.forget(r.name)
		inf.log.Debug("handler removed", zap.String("handler", r.name))
	})
}

func (r *registration[T]) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// push queues n. The caller holds inf.mu for writing and has not yet
// applied the change to items, so on overflow items is exactly what the
// handler will have seen once its queue drains.
func (r *registration[T]) push(n note[T], items map[string]*entry[T]) {
	r.mu.Lock()
	if r.behind {
		r.mu.Unlock()
		return
	}
	if r.q.n == len(r.q.buf) {
		r.behind = true
		r.snap = maps.Clone(items)
		r.mu.Unlock()
		if r.met != nil {
			r.met.catchUps.Inc()
		}
		r.inf.log.Warn("handler queue full: it will catch up from the cache",
			zap.String("handler", r.name), zap.Int("queue", len(r.q.buf)))
		return
	}
	r.q.push(n)
	depth := r.q.n
	r.mu.Unlock()
	if r.met != nil {
		r.met.depth.Set(float64(depth))
	}
	r.signal()
}

func (r *registration[T]) pop() (note[T], bool) {
	r.mu.Lock()
	if r.q.n == 0 {
		r.mu.Unlock()
		return note[T]{}, false
	}
	n := r.q.pop()
	depth := r.q.n
	r.mu.Unlock()
	if r.met != nil {
		r.met.depth.Set(float64(depth))
	}
	return n, true
}

// catchUp returns the notes that bring a handler with an empty queue that
// is behind to the cache's current state, plus a resync of every unchanged
// key when one is due; ok is false when there is nothing to do (or the
// cache has not synced yet).
func (r *registration[T]) catchUp() (notes []note[T], initial, ok bool) {
	inf := r.inf
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if (!r.behind && !r.resync) || r.q.n > 0 || !inf.synced {
		return nil, false, false
	}
	if !r.behind {
		notes = make([]note[T], 0, len(inf.c.items))
		for k, e := range inf.c.items {
			notes = append(notes, note[T]{kind: noteResync, key: k, old: e, new: e})
		}
		r.resync = false
		return notes, false, true
	}
	initial = !r.initialDone
	for k, e := range inf.c.items {
		switch old := r.snap[k]; {
		case old == nil:
			notes = append(notes, note[T]{kind: noteAdd, key: k, new: e, initial: initial})
		case old != e:
			notes = append(notes, note[T]{kind: noteUpdate, key: k, old: old, new: e})
		case r.resync:
			notes = append(notes, note[T]{kind: noteResync, key: k, old: e, new: e})
		}
	}
	for k, old := range r.snap {
		if inf.c.items[k] == nil {
			notes = append(notes, note[T]{kind: noteDelete, key: k, old: old})
		}
	}
	r.behind, r.snap, r.initialDone, r.resync = false, nil, true, false
	return notes, initial, true
}

func (r *registration[T]) run(ctx context.Context) {
	defer r.inf.wg.Done()
	for {
		if r.removed.Load() {
			return
		}
		if n, ok := r.pop(); ok {
			r.deliver(n)
			continue
		}
		if notes, initial, ok := r.catchUp(); ok {
			slices.SortFunc(notes, func(a, b note[T]) int { return strings.Compare(a.key, b.key) })
			for _, n := range notes {
				if r.removed.Load() || ctx.Err() != nil {
					return
				}
				r.deliver(n)
			}
			if initial {
				r.synced.Store(true)
				close(r.syncedCh)
				r.inf.log.Debug("handler synced", zap.String("handler", r.name), zap.Int("objects", len(notes)))
			}
			continue
		}
		select {
		case <-r.wake:
		case <-r.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

// deliver calls the handler; a panic is recovered, logged and counted, and
// the handler carries on with the next notification.
func (r *registration[T]) deliver(n note[T]) {
	if r.removed.Load() {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			if r.met != nil {
				r.met.panics.Inc()
			}
			r.inf.log.Error("handler panicked", zap.String("handler", r.name),
				zap.String("key", n.key), zap.String("panic", fmt.Sprint(p)), zap.StackSkip("stack", 2))
		}
	}()
	switch n.kind {
	case noteAdd:
		if r.h.OnAdd != nil {
			r.h.OnAdd(n.key, n.new.obj, n.initial)
		}
	case noteResync:
		switch {
		case r.h.OnResync != nil:
			r.h.OnResync(n.key, n.new.obj)
		case r.h.OnUpdate != nil:
			r.h.OnUpdate(n.key, n.old.obj, n.new.obj)
		}
	case noteUpdate:
		if r.h.OnUpdate != nil {
			r.h.OnUpdate(n.key, n.old.obj, n.new.obj)
		}
	case noteDelete:
		if r.h.OnDelete != nil {
			r.h.OnDelete(n.key, n.old.obj, n.final)
		}
	}
}

// AddEventHandler registers h. It is first given the whole cache as adds
// (isInitialList true) once the informer has synced, then every change.
// It may be called before or during Run; after Run has returned it fails
// with ErrStopped.
func (inf *Informer[T]) AddEventHandler(h Handler[T]) (Registration, error) {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	if inf.stopped {
		return nil, ErrStopped
	}
	inf.nextHandler++
	name := h.Name
	if name == "" {
		name = fmt.Sprintf("handler-%d", inf.nextHandler)
	}
	r := &registration[T]{
		inf: inf, h: h, name: name, met: inf.met.handler(name),
		q:        ring[T]{buf: make([]note[T], inf.cfg.HandlerQueueSize)},
		behind:   true, // until it has been given the cache
		wake:     make(chan struct{}, 1),
		syncedCh: make(chan struct{}),
		stop:     make(chan struct{}),
	}
	inf.handlers = append(inf.handlers, r)
	if inf.running {
		inf.wg.Add(1)
		go r.run(inf.runCtx)
	}
	return r, nil
}
