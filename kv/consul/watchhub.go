package consul

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Watches share blocking queries, through hubs, instead of holding an HTTP
// request (and so a connection) each: Consul's blocking queries cost the
// client a connection per request and the agent a slot of
// http_max_conns_per_client (200 by default), the wall users of per-key
// watches hit at a few thousand.
//
// The watches of one key share a key hub: one blocking Get. The watches of
// keys in one directory share a directory hub: a blocking Get while it has
// watches of one key only (a watch of another key that joins interrupts
// it), a blocking List of the directory once it has two keys or more. A
// directory hub is not worth it where listing the directory costs far
// more than the keys it follows: a directory hub with fewer than soloLimit
// keys whose List answers with more than sparseLimit entries dissolves
// into key hubs, as does one whose List is refused (a token with read
// but not list rights); later watches there use key hubs too, until
// soloLimit key hubs run there: from then on a directory hub that never
// dissolves takes the new ones, so a big directory watched key by key
// holds at most soloLimit+1 requests. Keys right below the Store's root
// always use key hubs: listing the root is listing the whole Store. So do
// the keys of a directory the token may not list. Those two are the cases
// where N watched keys still hold N requests.
//
// Every Watch still reads its first update itself before Watch returns,
// so that update is as fresh as it was without sharing; it joins its hub
// before that read, so that no change falls between the two (a change the
// hub saw before the join is in the read). A watch that moves (its
// directory hub dissolved) joins its key hub with the state it has, and
// that hub's next query waits from that state's index, so it misses
// nothing either. A hub hands a watch an entry only if it is newer than
// what the watch has (newerEntry): an entry whose ModifyIndex is above
// the index the watch's state is known at, or an absence in an answer
// whose index is above it. That keeps each watch's updates in order
// whatever the order of its join, its read and the hub's answers. An
// answer whose index went backwards (a snapshot restore) is the state
// now, as for a lone watch.

// sparseLimit is the number of entries above which a List of a
// directory is not worth sharing for n watched keys.
func sparseLimit(n int) int { return 64 + 16*n }

// soloLimit is the number of key hubs a directory too sparse to share
// may run: beyond it, the connections they hold cost more than the
// listings a directory hub makes.
const soloLimit = 32

type hubKey struct {
	dir        string // the keys' parent prefix in Consul, with its '/'
	key        string // a key hub's Consul key; "" for a directory hub
	consistent bool
}

func (k hubKey) dirHub() hubKey { return hubKey{dir: k.dir, consistent: k.consistent} }

// watchHubs are the Store's hubs, and what it knows of directories that
// are not worth listing.
type watchHubs struct {
	mu     sync.Mutex
	hubs   map[hubKey]*watchHub
	sparse map[hubKey]*sparseDir // by directory hub key
}

type sparseDir struct {
	unlistable bool // its List was refused
	keyHubs    int  // key hubs running there
	moving     int  // watches of a dissolved hub there, not yet in their key hub
}

type watchHub struct {
	s   *Store
	key hubKey
	// settled: a directory hub that never dissolves (see soloLimit).
	settled bool

	mu      sync.Mutex                        // after watchHubs.mu
	watches map[string]map[*keyWatch]struct{} // by Consul key
	started bool                              // its loop runs
	single  string                            // the key the query in flight follows alone; "" for a List
	rewind  uint64                            // the index the next query waits from, if lower (a watch moved in)
	// interrupt ends the query in flight: a watch joined that it does not
	// cover, or the last watch left.
	interrupt context.CancelFunc
}

// keyWatch is one Watch. Its goroutine sends what its hub finds for its
// key.
type keyWatch struct {
	s          *Store
	k, ck      string
	consistent bool
	ch         chan kv.KeyUpdate
	wake       chan struct{} // capacity 1: the hub has something for it
	hub        *watchHub     // set by attach, from Watch or the watch's own goroutine
	arriving   bool          // guarded by watchHubs.mu: moving, counted in sparseDir.moving

	// Guarded by hub.mu.
	last    *api.KVPair   // the entry last handed on (nil: absent)
	at      uint64        // the index last is known to be current at
	primed  bool          // its first read has answered
	early   bool          // it attached before its hub's loop started
	pending *kv.KeyUpdate // the next update to send, the latest only
	moving  bool          // its hub dissolved: join the key hub
	failed  error         // its hub's queries failed for good
}

// lastIndex is the index a blocking Get of the key waits from for w.
func (w *keyWatch) lastIndex() uint64 {
	if w.last != nil {
		return max(w.last.ModifyIndex, 1)
	}
	return max(w.at, 1)
}

func (w *keyWatch) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// attach adds w to the hub it belongs to, made if needed: before its first
// read from Watch, or, primed, when its hub dissolved.
func (s *Store) attach(w *keyWatch) {
	dir := w.ck[:strings.LastIndexByte(w.ck, '/')+1]
	dk := hubKey{dir: dir, consistent: w.consistent}
	hs := &s.hubs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	key := dk
	own := hubKey{dir: dir, key: w.ck, consistent: w.consistent}
	sp := hs.sparse[dk]
	switch {
	case dir == s.root:
		key = own
	case sp != nil && (sp.unlistable || sp.keyHubs < soloLimit || hs.hubs[own] != nil):
		key = own
	}
	h := hs.hubs[key]
	if h == nil {
		// A new hub's loop starts once a watch has read its key (prime):
		// its first query then waits from that read's index.
		h = &watchHub{s: s, key: key, watches: map[string]map[*keyWatch]struct{}{}, settled: sp != nil}
		if hs.hubs == nil {
			hs.hubs = map[hubKey]*watchHub{}
		}
		hs.hubs[key] = h
		if sp != nil && key.key != "" {
			sp.keyHubs++
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := h.watches[w.ck]
	if ws == nil {
		ws = map[*keyWatch]struct{}{}
		h.watches[w.ck] = ws
	}
	ws[w] = struct{}{}
	w.hub = h
	if !w.primed {
		w.early = !h.started
	}
	if w.arriving {
		w.arriving = false
		if sp != nil && sp.moving > 0 {
			sp.moving-- // a watch of a dissolved hub has arrived
		}
	}
	if w.primed && (h.rewind == 0 || w.lastIndex() < h.rewind) {
		h.rewind = w.lastIndex()
		if h.interrupt != nil {
			h.interrupt() // its next query must wait from w's state
		}
	}
	if h.single != "" && h.single != w.ck && h.interrupt != nil {
		h.interrupt() // the Get in flight does not cover w's key
	}
	if w.primed && !h.started {
		if !h.start() {
			h.removeLocked()
		}
	}
}

// start runs the hub's loop; with h.mu held. It fails only while the
// Store closes: its watches then get kv.ErrClosed.
func (h *watchHub) start() bool {
	if err := h.s.spawn(h.run); err != nil {
		h.failLocked(err)
		return false
	}
	h.started = true
	return true
}

// removeLocked drops h from the Store; with watchHubs.mu held.
func (h *watchHub) removeLocked() {
	hs := &h.s.hubs
	if hs.hubs[h.key] != h {
		return
	}
	delete(hs.hubs, h.key)
	dk := h.key.dirHub()
	sp := hs.sparse[dk]
	if sp == nil {
		return
	}
	if h.key.key != "" {
		sp.keyHubs--
	}
	if sp.keyHubs <= 0 && sp.moving <= 0 && !sp.unlistable && hs.hubs[dk] == nil {
		delete(hs.sparse, dk) // nothing left there: look at it afresh next time
	}
}

// leave removes w, whose caller left, from its hub.
func (h *watchHub) leave(w *keyWatch) {
	hs := &h.s.hubs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := h.watches[w.ck]
	if _, ok := ws[w]; !ok {
		return // it moved, or the hub has ended
	}
	delete(ws, w)
	if len(ws) == 0 {
		delete(h.watches, w.ck)
	}
	switch {
	case len(h.watches) > 0:
	case !h.started:
		h.removeLocked() // no loop to do it
	case h.interrupt != nil:
		h.interrupt() // nobody left to answer for
	}
}

// fail ends the hub: every watch of it gets err.
func (h *watchHub) fail(err error) {
	hs := &h.s.hubs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h.removeLocked()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failLocked(err)
}

func (h *watchHub) failLocked(err error) {
	for _, ws := range h.watches {
		for w := range ws {
			w.failed = err
			w.notify()
		}
	}
	clear(h.watches)
}

// dissolve ends a directory hub not worth listing: its watches move to key
// hubs, and so do later ones there (see soloLimit).
func (h *watchHub) dissolve(unlistable bool) {
	hs := &h.s.hubs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h.removeLocked()
	sp := hs.sparse[h.key]
	if sp == nil {
		sp = &sparseDir{}
		if hs.sparse == nil {
			hs.sparse = map[hubKey]*sparseDir{}
		}
		hs.sparse[h.key] = sp
	}
	sp.unlistable = sp.unlistable || unlistable
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ws := range h.watches {
		for w := range ws {
			w.moving = true
			w.arriving = true
			sp.moving++ // until it arrives (attach)
			w.notify()
		}
	}
	clear(h.watches)
}

// run is the hub's loop of blocking queries.
func (h *watchHub) run() {
	s := h.s
	b := s.newBlocker(1, s.cfg.WaitTime, h.key.consistent)
	what := strings.TrimPrefix(h.key.dir, s.root)
	if h.key.key != "" {
		what = strings.TrimPrefix(h.key.key, s.root)
	}
	first := true
	for {
		hs := &s.hubs
		hs.mu.Lock()
		h.mu.Lock()
		if len(h.watches) == 0 {
			h.removeLocked()
			h.mu.Unlock()
			hs.mu.Unlock()
			return
		}
		single := h.key.key
		if single == "" && len(h.watches) == 1 {
			for ck := range h.watches {
				single = ck
			}
		}
		if single != h.single && !first {
			b.index = 1 // another shape: an answer at once, whose index is its own
		}
		if h.rewind != 0 {
			// A watch moved in (or, first, the one that started the hub):
			// wait from its state, so that no change after it is missed.
			if first {
				b.index = h.rewind
			} else {
				b.index = min(b.index, h.rewind)
			}
			h.rewind = 0
		}
		first = false
		h.single = single
		qctx, interrupt := context.WithCancel(s.ctx)
		h.interrupt = interrupt
		h.mu.Unlock()
		hs.mu.Unlock()

		var entries []*api.KVPair
		var idx uint64
		out, err := b.next(qctx, "watch", what, func(q *api.QueryOptions) (uint64, error) {
			var meta *api.QueryMeta
			var err error
			if single != "" {
				var p *api.KVPair
				p, meta, err = s.kv.Get(single, q)
				entries = nil
				if p != nil {
					entries = []*api.KVPair{p}
				}
			} else {
				entries, meta, err = s.kv.List(h.key.dir, q)
			}
			if err != nil {
				return 0, err
			}
			idx = meta.LastIndex
			return idx, nil
		})
		interrupted := qctx.Err() != nil && s.ctx.Err() == nil
		interrupt()
		switch {
		case err != nil && interrupted:
			continue // the watches changed
		case err != nil && single == "" && errors.Is(err, kv.ErrPermissionDenied):
			h.dissolve(true) // the token may read the keys, not list them
			return
		case err != nil:
			h.fail(err)
			return
		case out == retry:
			continue
		}
		if n := h.size(); single == "" && !h.settled && n < soloLimit && len(entries) > sparseLimit(n) {
			h.dissolve(false)
			return
		}
		switch useful := h.deliver(out == reset, idx, entries, single); {
		case useful || single == "" && len(entries) > 0:
			// A non-empty List answers only when its subtree changed: not
			// a loop to slow down, even when no watched key changed.
			b.useful()
		default:
			b.spurious()
		}
	}
}

func (h *watchHub) size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watches)
}

// deliver hands each watch covered by the answer (index idx) its key's
// entry if that is newer than what it has, and reports whether any got
// one.
func (h *watchHub) deliver(reset bool, idx uint64, entries []*api.KVPair, single string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	found := make(map[string]*api.KVPair, min(len(entries), len(h.watches)))
	for _, p := range entries {
		if _, ok := h.watches[p.Key]; ok {
			found[p.Key] = p
		}
	}
	useful := false
	for ck, ws := range h.watches {
		if single != "" && ck != single {
			continue // joined after the answer's query was sent
		}
		e := found[ck]
		for w := range ws {
			if reset {
				w.at = 0 // indexes went back: the answer is the state now
			}
			switch {
			case sameEntry(w.last, e):
				w.at = max(w.at, idx)
				continue
			case !reset && !newerEntry(e, idx, w.last, w.at):
				continue // older than what the watch has
			}
			w.last, w.at = e, max(w.at, idx)
			u := h.s.keyUpdate(w.k, e)
			w.pending = &u
			w.notify()
			useful = true
		}
	}
	return useful
}

// prime settles w's state once its first read (entry first, at index
// idx) has answered: the newer of that read and what the hub has handed
// w since it joined, which is then w's first update.
func (h *watchHub) prime(w *keyWatch, first *api.KVPair, idx uint64) kv.KeyUpdate {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.at == 0 || newerEntry(first, idx, w.last, w.at) {
		w.last = first
	}
	w.at = max(w.at, idx)
	w.pending = nil // what it held is in the first update, or older
	w.primed = true
	if w.failed == nil && !w.moving && (!h.started || w.early) {
		// The hub's queries must wait from this read, or from an older
		// one: started before it, or by another watch that attached
		// before the start but read later, they may have waited from an
		// index past a change this read does not show.
		if h.rewind == 0 || w.lastIndex() < h.rewind {
			h.rewind = w.lastIndex()
			if h.started && h.interrupt != nil {
				h.interrupt()
			}
		}
		if !h.started {
			h.start() // on failure (closing) w.failed says so
		}
	}
	return h.s.keyUpdate(w.k, w.last)
}

// newerEntry reports whether entry a, read at index ai, is newer than
// entry b, read at index bi: a present entry by its ModifyIndex, an
// absence by the index of the answer that showed it.
func newerEntry(a *api.KVPair, ai uint64, b *api.KVPair, bi uint64) bool {
	switch {
	case a != nil && b != nil:
		return a.ModifyIndex > b.ModifyIndex
	case a != nil:
		return a.ModifyIndex > bi
	case b != nil:
		return ai > b.ModifyIndex
	}
	return ai > bi
}

// run sends what w's hub finds until the caller leaves or the hub fails;
// when the hub dissolves, w moves to its key hub and goes on.
func (w *keyWatch) run(ctx, wctx context.Context) {
	for {
		h := w.hub
		select {
		case <-wctx.Done():
			h.leave(w)
			endWatch(ctx, w.s.gone(), w.ch, kv.KeyUpdate{Key: w.k}, keyClosed)
			return
		case <-w.wake:
		}
		h.mu.Lock()
		u, moving, failed := w.pending, w.moving, w.failed
		w.pending, w.moving = nil, false
		h.mu.Unlock()
		if u != nil && !driver.Send(wctx, w.ch, *u) {
			if !moving && failed == nil {
				h.leave(w)
			}
			endWatch(ctx, w.s.gone(), w.ch, kv.KeyUpdate{Key: w.k}, keyClosed)
			return
		}
		switch {
		case failed != nil:
			endWatch(ctx, w.s.gone(), w.ch, kv.KeyUpdate{Key: w.k, Err: fmt.Errorf("consul: watch %q: %w", w.k, failed)}, keyClosed)
			return
		case moving:
			w.s.attach(w)
		}
	}
}
