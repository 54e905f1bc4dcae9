package memory

import (
	"context"
	"fmt"
	"sort"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Watch implements kv.Store. Each watch has one goroutine that replays the
// backend's history for its key; a slow reader delays only that goroutine.
// A reader so slow that the history was compacted past it gets the key's
// current state next, not every intermediate one.
func (s *Store) Watch(ctx context.Context, key string, _ *kv.ReadOptions) (<-chan kv.KeyUpdate, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, fmt.Errorf("memory: watch: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	var cur *kv.KVPair
	if e := s.b.data[k]; e != nil {
		cur = e.pair
	}
	rev := s.b.rev
	ch := make(chan kv.KeyUpdate)
	s.goroutines.Go(func() { s.watchKey(ctx, k, rev, cur, ch) }) // lock checked closed; Close stops the group under b.mu
	s.b.mu.Unlock()
	return ch, nil
}

func (s *Store) watchKey(ctx context.Context, k string, rev uint64, cur *kv.KVPair, ch chan<- kv.KeyUpdate) {
	defer close(ch)
	end := func(err error) kv.KeyUpdate { return kv.KeyUpdate{Key: k, Err: err} }
	if !send(ctx, s, ch, kv.KeyUpdate{Key: k, Pair: clonePair(cur)}, end) {
		return
	}
	last := cur
	for {
		var ups []*kv.KVPair // nil element: deleted
		s.b.mu.Lock()
		wake := s.b.changed
		if rev < s.b.compacted {
			var now *kv.KVPair
			if e := s.b.data[k]; e != nil {
				now = e.pair
			}
			if (now == nil) != (last == nil) || (now != nil && now.LastIndex != last.LastIndex) {
				ups = append(ups, now)
			}
		} else {
			for _, r := range s.b.hist[s.b.sinceLocked(rev):] {
				if r.key == k {
					ups = append(ups, r.pair)
				}
			}
		}
		rev = s.b.rev
		s.b.mu.Unlock()
		for _, p := range ups {
			if !send(ctx, s, ch, kv.KeyUpdate{Key: k, Pair: clonePair(p)}, end) {
				return
			}
			last = p
		}
		if !wait(ctx, s, ch, wake, end) {
			return
		}
	}
}

// WatchTree implements kv.Store. Like Watch, it replays history: every
// revision that changed something below prefix yields one update (a
// DeleteTree is one update), unless the history was compacted past a slow
// reader, which then gets the current state.
func (s *Store) WatchTree(ctx context.Context, prefix string, _ *kv.ReadOptions) (<-chan kv.TreeUpdate, error) {
	p, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("memory: watch tree: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	state := make(map[string]*kv.KVPair)
	s.b.belowLocked(p, func(k string, e *entry) bool {
		state[k] = e.pair
		return true
	})
	rev := s.b.rev
	ch := make(chan kv.TreeUpdate)
	s.goroutines.Go(func() { s.watchTree(ctx, p, rev, state, ch) })
	s.b.mu.Unlock()
	return ch, nil
}

func (s *Store) watchTree(ctx context.Context, p string, rev uint64, state map[string]*kv.KVPair, ch chan<- kv.TreeUpdate) {
	defer close(ch)
	end := func(err error) kv.TreeUpdate { return kv.TreeUpdate{Prefix: p, Err: err} }
	if !send(ctx, s, ch, kv.TreeUpdate{Prefix: p, Pairs: sortedClone(state), Revision: rev}, end) {
		return
	}
	for {
		var recs []record
		resync := false
		s.b.mu.Lock()
		wake := s.b.changed
		if rev < s.b.compacted {
			resync = true
			clear(state)
			s.b.belowLocked(p, func(k string, e *entry) bool {
				state[k] = e.pair
				return true
			})
		} else {
			for _, r := range s.b.hist[s.b.sinceLocked(rev):] {
				if kv.IsBelow(r.key, p) {
					recs = append(recs, r)
				}
			}
		}
		rev = s.b.rev
		s.b.mu.Unlock()
		if resync {
			if !send(ctx, s, ch, kv.TreeUpdate{Prefix: p, Pairs: sortedClone(state), Revision: rev}, end) {
				return
			}
		}
		for i := 0; i < len(recs); {
			j := i
			for ; j < len(recs) && recs[j].rev == recs[i].rev; j++ {
				if recs[j].pair == nil {
					delete(state, recs[j].key)
				} else {
					state[recs[j].key] = recs[j].pair
				}
			}
			if !send(ctx, s, ch, kv.TreeUpdate{Prefix: p, Pairs: sortedClone(state), Revision: recs[i].rev}, end) {
				return
			}
			i = j
		}
		if !wait(ctx, s, ch, wake, end) {
			return
		}
	}
}

func sortedClone(state map[string]*kv.KVPair) []*kv.KVPair {
	out := make([]*kv.KVPair, 0, len(state))
	for _, p := range state {
		out = append(out, clonePair(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// send delivers v unless ctx ends or the client goes away; in the latter
// case it delivers the terminal update end(err) instead. It reports whether
// the stream goes on.
func send[T any](ctx context.Context, s *Store, ch chan<- T, v T, end func(error) T) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		driver.SendLast(ctx, ch, end(s.endErr()))
		return false
	}
}

// wait blocks until wake closes (true), or ctx ends or the client goes
// away (false, after the terminal update).
func wait[T any](ctx context.Context, s *Store, ch chan<- T, wake <-chan struct{}, end func(error) T) bool {
	select {
	case <-wake:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		driver.SendLast(ctx, ch, end(s.endErr()))
		return false
	}
}
