package consul

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// progressWait is the wait time of the blocking queries behind Events: an
// idle stream answers that often, and sends a progress batch each time.
const progressWait = 500 * time.Millisecond

// Revision returns the KV table's index, read consistently: the index of
// the last KV write (put, delete or session-driven delete) the leader
// applied. Every completed KV write has an index at most this.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	if err := s.usable(ctx); err != nil {
		return 0, fmt.Errorf("consul: revision: %w", err)
	}
	// A read of a key that never exists answers with the table index, not
	// a key's, at the cost of one index lookup on the server.
	_, meta, err := s.kv.Get(s.internal+"revision-probe", s.queryOpts(ctx, true))
	if err != nil {
		return 0, s.translate(ctx, "revision", "", err)
	}
	if meta.LastIndex == 0 {
		// Every answer of Consul's KV API carries X-Consul-Index, at least
		// 1: this one came from something else.
		return 0, fmt.Errorf("consul: revision: %w: the answer has no X-Consul-Index: not Consul's HTTP API at that address?", kv.ErrNotReachable)
	}
	return meta.LastIndex, nil
}

// Snapshot lists prefix consistently. Its revision is the list's index:
// the index of the last change below the prefix (or the table's, for a
// prefix that never had keys), at which the listed state is exact.
func (s *Store) Snapshot(ctx context.Context, prefix string) (kv.Snapshot, error) {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	p, err := s.checkPrefix(ctx, "snapshot", prefix)
	if err != nil {
		return kv.Snapshot{}, err
	}
	pairs, rev, err := s.list(ctx, p, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		return kv.Snapshot{}, err
	}
	s.baselines.put(p, rev, indexOf(pairs))
	return kv.Snapshot{Pairs: pairs, Revision: rev}, nil
}

// Events streams the changes below prefix after revision after.
//
// Consul keeps no history of changes, so the stream is computed: each
// answer of a blocking list query is diffed by ModifyIndex against the
// previous one. A put event carries the key's ModifyIndex as revision; a
// delete carries the list's index (the graveyard's, so at least the
// delete's). That is O(keys below prefix) per change, and changes between
// two answers are coalesced into the latest state of each key.
//
// A stream can only start from a state the Store knows: the current one
// (after equals the prefix's index), revision 0 (the empty store), or one
// that a Snapshot or an earlier stream of this Store reached and that is
// still among the few it remembers. Otherwise, and when the index goes
// backwards (a snapshot restore), the stream reports kv.ErrCompacted.
func (s *Store) Events(ctx context.Context, prefix string, after uint64) (<-chan kv.EventBatch, error) {
	p, err := s.checkPrefix(ctx, "events", prefix)
	if err != nil {
		return nil, err
	}
	pairs, x, err := s.list(ctx, p, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		return nil, err
	}
	var base map[string]uint64
	switch {
	case after == 0:
		base = map[string]uint64{}
	case x > after:
		base = s.baselines.get(p, after)
		if base == nil && len(pairs) == 0 {
			// An empty prefix answers with the store's index when it has
			// no tombstones either, so x > after says nothing about it;
			// take it as empty at after too. See "Not guaranteed" in the
			// package documentation for the case this gets wrong.
			base = map[string]uint64{}
		}
	default:
		// Nothing changed below the prefix after x, so the state at any
		// revision from x up to the store's current one is the listed one.
		// A revision beyond the current one means the index went back.
		g, err := s.Revision(ctx)
		if err != nil {
			return nil, err
		}
		if after <= g {
			base = indexOf(pairs)
		}
	}
	ch := make(chan kv.EventBatch)
	err = s.spawnWatch(ctx, func(wctx context.Context) error {
		defer close(ch)
		if base == nil {
			if !driver.Send(wctx, ch, kv.EventBatch{Revision: after, Err: fmt.Errorf("consul: events %q: %w",
				p, &kv.CompactedError{Requested: after, Compacted: x})}) {
				endWatch(ctx, s.gone(), ch, kv.EventBatch{Revision: after}, eventsClosed)
			}
			return nil
		}
		// The poller runs the blocking queries and queues batches; this
		// goroutine hands them to the reader. A reader that is slow for a
		// moment then does not hold up the next query, so fewer changes
		// are coalesced; a reader that stays slow fills the queue, and the
		// poller waits (nothing is dropped, memory stays bounded).
		queue := make(chan kv.EventBatch, eventQueue)
		polled := make(chan struct{})
		if err := s.spawn(func() {
			defer close(polled)
			defer close(queue)
			s.pollEvents(wctx, p, base, pairs, x, after, queue)
		}); err != nil {
			endWatch(ctx, s.gone(), ch, kv.EventBatch{Revision: after}, eventsClosed)
			return err
		}
		sent := after
		for b := range queue {
			if !driver.Send(wctx, ch, b) {
				break
			}
			sent = b.Revision
			if b.Err != nil {
				break
			}
		}
		<-polled
		if wctx.Err() != nil || s.gone() != nil {
			endWatch(ctx, s.gone(), ch, kv.EventBatch{Revision: sent}, eventsClosed)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("consul: events %q: %w", p, err)
	}
	return ch, nil
}

// eventQueue bounds the batches an Events stream queues for a slow reader.
const eventQueue = 256

// pollEvents follows prefix from state base (the listed pairs at index x
// being the current state) and queues one batch per answer that changed
// something, or a progress batch when idle. A terminal error is queued as
// a batch with Err. It returns when ctx ends or after the terminal batch.
func (s *Store) pollEvents(ctx context.Context, p string, base map[string]uint64, pairs []*kv.KVPair, x, after uint64, queue chan<- kv.EventBatch) {
	state := base
	sent := after
	// emit queues the changes from state to pairs, or a progress batch
	// (only when rev moved, or when asked to).
	emit := func(pairs []*kv.KVPair, x, rev uint64, progress bool) bool {
		var events []kv.Event
		events, state = diff(state, pairs, x, sent)
		rev = max(rev, x, sent)
		if len(events) == 0 && rev == sent && !progress {
			return true
		}
		s.baselines.put(p, rev, state)
		sent = rev
		return driver.Send(ctx, queue, kv.EventBatch{Events: events, Revision: rev})
	}
	if !emit(pairs, x, x, false) {
		return
	}
	// The queries run on a goroutine of their own, which sends the next
	// query as soon as an answer is in, while this one diffs and queues:
	// the shorter the gap between two queries, the fewer changes coalesce.
	answers := make(chan listAnswer, 1)
	queried := make(chan struct{})
	if err := s.spawn(func() {
		defer close(queried)
		defer close(answers)
		s.queryEvents(ctx, p, pairs, x, answers)
	}); err != nil {
		return
	}
	defer func() { <-queried }()
	for a := range answers {
		if a.err != nil {
			if ctx.Err() == nil {
				driver.Send(ctx, queue, kv.EventBatch{Revision: sent, Err: a.err})
			}
			return
		}
		if !emit(a.pairs, a.x, a.g, a.idle) {
			return
		}
	}
}

// listAnswer is one answer of the blocking list behind an Events stream.
type listAnswer struct {
	pairs []*kv.KVPair
	x     uint64 // the list's index
	g     uint64 // the store's revision read before the list, or 0
	idle  bool   // the list brought no change: a progress notice is due
	err   error  // terminal
}

// queryEvents runs the blocking list queries of an Events stream and sends
// their answers, in order, until ctx ends or after a terminal error.
func (s *Store) queryEvents(ctx context.Context, p string, last []*kv.KVPair, x uint64, answers chan<- listAnswer) {
	b := s.newBlocker(x, progressWait, false)
	idle := true
	for {
		// The store's revision read before the list is covered by the
		// list's answer: every write up to it happened before the list
		// ran, so an answer without changes has caught up to it. It is
		// only worth its round trip when the stream is idle (progress
		// batches need it); while changes flow, the list's own index is
		// the batch revision and the loop turns around faster.
		var g uint64
		var err error
		if idle {
			if g, err = s.Revision(ctx); err != nil && transient(err) && ctx.Err() == nil {
				g, err = 0, nil // the list below has its own retry budget
			}
		}
		var out outcome
		var pairs []*kv.KVPair
		if err == nil {
			out, err = b.next(ctx, "events", p, func(q *api.QueryOptions) (uint64, error) {
				var err error
				pairs, x, err = s.list(ctx, p, q)
				return x, err
			})
		}
		if err == nil && out == reset {
			err = fmt.Errorf("consul: events %q: the index went backwards (snapshot restore?): %w",
				p, &kv.CompactedError{Requested: x, Compacted: x})
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			driver.Send(ctx, answers, listAnswer{err: err})
			return
		}
		if out == retry {
			continue
		}
		if driver.SamePairs(last, pairs) {
			b.spurious() // woken by a write elsewhere (an empty prefix answers with the store's index)
		} else {
			b.useful()
		}
		// The progress notice is due when this answer brought nothing, and
		// was asked for right after a probe (g).
		changed := !driver.SamePairs(last, pairs)
		if !driver.Send(ctx, answers, listAnswer{pairs: pairs, x: x, g: g, idle: idle && !changed}) {
			return
		}
		last = pairs
		idle = !changed
	}
}

func eventsClosed(b kv.EventBatch, err error) kv.EventBatch {
	b.Err = fmt.Errorf("consul: events: %w", err)
	return b
}

func indexOf(pairs []*kv.KVPair) map[string]uint64 {
	m := make(map[string]uint64, len(pairs))
	for _, p := range pairs {
		m[p.Key] = p.LastIndex
	}
	return m
}

// diff returns the events that lead from state old to the listed pairs, in
// revision order, and the new state. prev is the revision already reported
// and x the list's index.
//
// A put carries the key's ModifyIndex. A delete's own index is not in the
// listing; all deletes of one answer get one revision (a DeleteTree or a
// session expiry removes many keys in one raft entry): x when no put has
// it, since the list's index then is the graveyard's, the last delete's;
// otherwise the deletes came before that put, and they get the lowest
// index above prev that no put of the answer has, so that separate writes
// never share a revision.
func diff(old map[string]uint64, pairs []*kv.KVPair, x, prev uint64) ([]kv.Event, map[string]uint64) {
	next := make(map[string]uint64, len(pairs))
	var events []kv.Event
	puts := map[uint64]bool{}
	for _, p := range pairs {
		next[p.Key] = p.LastIndex
		if old[p.Key] != p.LastIndex {
			events = append(events, kv.Event{Type: kv.EventPut, Pair: p})
			puts[p.LastIndex] = true
		}
	}
	delRev := x
	if puts[x] {
		for delRev = prev + 1; puts[delRev] && delRev < x; delRev++ {
		}
	}
	for k := range old {
		if _, ok := next[k]; !ok {
			events = append(events, kv.Event{Type: kv.EventDelete, Pair: &kv.KVPair{Key: k, Revision: delRev}})
		}
	}
	slices.SortFunc(events, func(a, b kv.Event) int {
		return cmp.Or(cmp.Compare(a.Pair.Revision, b.Pair.Revision), cmp.Compare(a.Pair.Key, b.Pair.Key))
	})
	return events, next
}

// baselineCache remembers a few recent states of prefixes (key ->
// ModifyIndex, values are not needed to diff), so that an Events stream can
// start from a Snapshot's revision or resume where an earlier stream
// stopped. It is Consul's stand-in for history: compacting it (Compact)
// is what makes old revisions unavailable.
type baselineCache struct {
	mu    sync.Mutex
	limit int
	items []baseline // oldest first
}

type baseline struct {
	prefix string
	rev    uint64
	state  map[string]uint64
}

func newBaselineCache(limit int) *baselineCache { return &baselineCache{limit: limit} }

func (c *baselineCache) put(prefix string, rev uint64, state map[string]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = slices.DeleteFunc(c.items, func(b baseline) bool { return b.prefix == prefix && b.rev == rev })
	if len(c.items) >= c.limit {
		c.items = slices.Delete(c.items, 0, 1)
	}
	c.items = append(c.items, baseline{prefix: prefix, rev: rev, state: state})
}

func (c *baselineCache) get(prefix string, rev uint64) map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.items {
		if b.prefix == prefix && b.rev == rev {
			return b.state
		}
	}
	return nil
}

// compact forgets every remembered state at or below rev: Events from such
// a revision then report kv.ErrCompacted (unless nothing changed below the
// prefix since, in which case the current state is that state). This is
// what compaction means on Consul, which keeps no history of its own; the
// tests' Harness.Compact calls it.
func (s *Store) compact(rev uint64) {
	s.baselines.mu.Lock()
	defer s.baselines.mu.Unlock()
	s.baselines.items = slices.DeleteFunc(s.baselines.items, func(b baseline) bool { return b.rev <= rev })
}
