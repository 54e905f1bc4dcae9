package consul

import (
	"context"
	"strings"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Watches of keys in one directory share one blocking query, a watchHub,
// instead of holding an HTTP request (and so a connection) each: Consul's
// blocking queries cost the client a connection per request and the agent
// a slot of http_max_conns_per_client (200 by default), the wall users of
// per-key watches hit at a few thousand. A hub follows its directory:
//
//   - with a blocking Get of the key while it has watches of one key only
//     (the cost of a lone Watch is what it was before sharing);
//   - with a blocking List of the directory once it has watches of two
//     keys or more; a watch that joins interrupts a Get in flight, so the
//     next query covers its key;
//   - and, while it watches fewer than soloLimit keys, it dissolves when a
//     List answers with far more entries than it watches (sparseLimit):
//     each of its watches then runs its own blocking Get again, and so do
//     later watches of that directory until soloLimit of them run alone
//     there; from then on they share a hub that never dissolves. So two
//     watched keys beside a big subtree never cost its listing per change,
//     and a big directory watched key by key holds at most soloLimit+1
//     requests, not one per key.
//
// Every Watch still reads its first update itself before Watch returns,
// so that update is as fresh as it was without sharing; it joins the hub
// before that read, so that no change falls between the two (a change the
// hub saw before the join is in the read). The hub hands a watch an entry
// only if it is newer than what the watch has (newerEntry): an entry
// whose ModifyIndex is above the index the watch's state is known at, or
// an absence in an answer whose index is above it. That keeps the order of
// each watch's updates whatever the order of its join, its read and the
// hub's queries. A hub's answer with an index that went backwards (a
// snapshot restore) lowers those indexes, as a lone watch starts over.

// sparseLimit is the number of entries above which a List of a hub's
// directory is not worth sharing for n watched keys.
func sparseLimit(n int) int { return 64 + 16*n }

// soloLimit is the number of watches of one directory that may run alone
// because it is too sparse to share: beyond it, the connections they hold
// cost more than the listings a shared query makes.
const soloLimit = 32

type hubKey struct {
	dir        string // the keys' parent prefix in Consul, with its '/'
	consistent bool
}

func hubKeyOf(ck string, consistent bool) hubKey {
	return hubKey{dir: ck[:strings.LastIndexByte(ck, '/')+1], consistent: consistent}
}

// watchHubs are the Store's hubs, and the directories found too sparse to
// share.
type watchHubs struct {
	mu   sync.Mutex
	hubs map[hubKey]*watchHub
	// sparse counts, per directory found too sparse to share, the
	// watches sent to run alone there.
	sparse map[hubKey]int
}

type watchHub struct {
	s   *Store
	key hubKey

	mu      sync.Mutex                        // after watchHubs.mu
	watches map[string]map[*keyWatch]struct{} // by Consul key
	started bool                              // its loop runs
	settled bool                              // it never dissolves (see soloLimit)
	single  string                            // the key the query in flight follows alone; "" for a List
	// interrupt ends the query in flight: a watch of another key joined,
	// or the last watch left.
	interrupt context.CancelFunc
}

// keyWatch is one Watch. Its goroutine sends what the hub finds for its
// key or, on its own (not shared, or its hub dissolved), runs the key's
// blocking queries itself.
type keyWatch struct {
	s          *Store
	k, ck      string
	consistent bool
	ch         chan kv.KeyUpdate
	wake       chan struct{} // capacity 1: the hub has something for it

	hub *watchHub // nil: on its own from the start
	// Guarded by hub.mu while the hub has the watch; the watch's own
	// afterwards.
	last    *api.KVPair   // the entry last handed on (nil: absent)
	at      uint64        // the index last is known to be current at
	pending *kv.KeyUpdate // the next update to send, the latest only
	primed  bool          // its first read has answered
	solo    bool          // the hub dissolved: go on alone
	failed  error         // the hub's query failed for good
}

// lastIndex is the index a lone blocking Get of the key waits from.
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

// join adds w to its directory's hub, started if needed. It reports false
// when w must run alone (the directory is too sparse to share).
func (s *Store) join(w *keyWatch) (bool, error) {
	key := hubKeyOf(w.ck, w.consistent)
	hs := &s.hubs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	alone := hs.sparse[key]
	if alone > 0 && alone < soloLimit {
		hs.sparse[key]++
		return false, nil
	}
	h := hs.hubs[key]
	if h == nil {
		// Its loop starts once this watch has read its key (prime): its
		// first query then waits from that read's index.
		h = &watchHub{s: s, key: key, watches: map[string]map[*keyWatch]struct{}{}, settled: alone > 0}
		if hs.hubs == nil {
			hs.hubs = map[hubKey]*watchHub{}
		}
		hs.hubs[key] = h
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
	if h.single != "" && h.single != w.ck && h.interrupt != nil {
		h.interrupt() // the Get in flight does not cover w's key
	}
	return true, nil
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
		return // the hub has ended
	}
	delete(ws, w)
	if len(ws) == 0 {
		delete(h.watches, w.ck)
	}
	switch {
	case len(h.watches) > 0:
	case !h.started:
		if hs.hubs[h.key] == h {
			delete(hs.hubs, h.key) // no loop to do it
		}
	case h.interrupt != nil:
		h.interrupt() // nobody left to answer for
	}
}

// end removes the hub from the Store and hands its watches on: each with
// err, or, when err is nil and sparse, to run alone.
func (h *watchHub) end(err error, sparse bool) {
	hs := &h.s.hubs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h.endLocked(err, sparse)
}

func (h *watchHub) endLocked(err error, sparse bool) {
	hs := &h.s.hubs
	if hs.hubs[h.key] == h {
		delete(hs.hubs, h.key)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if sparse {
		if hs.sparse == nil {
			hs.sparse = map[hubKey]int{}
		}
		for _, ws := range h.watches {
			hs.sparse[h.key] += len(ws)
		}
	}
	for _, ws := range h.watches {
		for w := range ws {
			if err != nil {
				w.failed = err
			} else {
				w.solo = true
			}
			w.notify()
		}
	}
	clear(h.watches)
}

// run is the hub's loop of blocking queries.
func (h *watchHub) run() {
	s := h.s
	b := s.newBlocker(1, s.cfg.WaitTime, h.key.consistent) // the first query answers at once
	for {
		hs := &s.hubs
		hs.mu.Lock()
		h.mu.Lock()
		if len(h.watches) == 0 {
			h.mu.Unlock()
			if hs.hubs[h.key] == h {
				delete(hs.hubs, h.key)
			}
			hs.mu.Unlock()
			return
		}
		single := ""
		if len(h.watches) == 1 {
			for ck, ws := range h.watches {
				single = ck
				if single != h.single {
					// From a List to a Get: wait from the key's own index,
					// which is what a Get answers with.
					idx := uint64(1) // none has read its key yet: answer at once
					for w := range ws {
						if i := w.lastIndex(); w.primed && (idx == 1 || i < idx) {
							idx = i
						}
					}
					b.index = idx
				}
			}
		}
		h.single = single
		qctx, interrupt := context.WithCancel(s.ctx)
		h.interrupt = interrupt
		h.mu.Unlock()
		hs.mu.Unlock()

		var entries []*api.KVPair
		var idx uint64
		out, err := b.next(qctx, "watch", strings.TrimPrefix(h.key.dir, s.root), func(q *api.QueryOptions) (uint64, error) {
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
		interrupt()
		switch {
		case err != nil && s.ctx.Err() == nil && qctx.Err() != nil:
			continue // interrupted: the watches changed
		case err != nil:
			h.end(err, false)
			return
		case out == retry:
			continue
		}
		if n := h.size(); single == "" && !h.settled && n < soloLimit && len(entries) > sparseLimit(n) {
			h.end(nil, true)
			return
		}
		switch useful := h.deliver(out == reset, idx, entries, single); {
		case useful || len(entries) > 0:
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
func (h *watchHub) prime(w *keyWatch, first *api.KVPair, idx uint64) (kv.KeyUpdate, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.at == 0 || newerEntry(first, idx, w.last, w.at) {
		w.last = first
	}
	w.at = max(w.at, idx)
	w.pending = nil // what it held is in the first update, or older
	w.primed = true
	if !h.started {
		if err := h.s.spawn(h.run); err != nil {
			return kv.KeyUpdate{}, err
		}
		h.started = true
	}
	return h.s.keyUpdate(w.k, w.last), nil
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

// runShared sends what the hub finds until the caller leaves, the hub
// fails, or it dissolves; it reports whether the watch goes on alone.
func (w *keyWatch) runShared(ctx, wctx context.Context) bool {
	h := w.hub
	for {
		select {
		case <-wctx.Done():
			h.leave(w)
			endWatch(ctx, w.s.gone(), w.ch, kv.KeyUpdate{Key: w.k}, keyClosed)
			return false
		case <-w.wake:
		}
		h.mu.Lock()
		u, solo, failed := w.pending, w.solo, w.failed
		w.pending = nil
		h.mu.Unlock()
		if u != nil && !driver.Send(wctx, w.ch, *u) {
			h.leave(w)
			endWatch(ctx, w.s.gone(), w.ch, kv.KeyUpdate{Key: w.k}, keyClosed)
			return false
		}
		switch {
		case failed != nil:
			endWatch(ctx, w.s.gone(), w.ch, kv.KeyUpdate{Key: w.k, Err: failed}, keyClosed)
			return false
		case solo:
			return true
		}
	}
}
