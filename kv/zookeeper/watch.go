package zookeeper

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Watch implements kv.Store. Updates are coalesced the way ZooKeeper's
// one-shot watches are: two writes that land before the watch is re-armed
// (one round trip) show up as one update with the later value. After a
// session expiry the key is read again and its state sent if it changed.
func (s *Store) Watch(ctx context.Context, key string, opts *kv.ReadOptions) (<-chan kv.KeyUpdate, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: watch: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	t := s.newTree(s.path(k), true, true)
	if err := s.callUnbounded(ctx, func() error { return s.loadTree(t, opts) }); err != nil {
		t.close()
		return nil, err
	}
	ch := make(chan kv.KeyUpdate)
	ok := s.goroutines.Go(func() {
		defer close(ch)
		defer t.close()
		var last *kv.KVPair
		send := func(u kv.KeyUpdate) bool {
			return deliver(ctx, s.done, ch, u, func() kv.KeyUpdate { return kv.KeyUpdate{Key: k, Err: s.closedErr()} })
		}
		current := func() *kv.KVPair {
			ps := t.pairs()
			if len(ps) == 0 {
				return nil
			}
			return ps[0]
		}
		last = current()
		if !send(kv.KeyUpdate{Key: k, Pair: last}) {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				driver.SendLast(ctx, ch, kv.KeyUpdate{Key: k, Err: s.closedErr()})
				return
			case <-t.in.wake:
			}
			chs, err := t.applyQueued()
			for _, c := range latestPerKey(withoutGaps(chs)) {
				last = c.pair
				if !send(kv.KeyUpdate{Key: k, Pair: c.pair}) {
					return
				}
			}
			if errors.Is(err, errResync) {
				if err = t.reload(); err == nil {
					if now := current(); !samePair(now, last) {
						last = now
						if !send(kv.KeyUpdate{Key: k, Pair: now}) {
							return
						}
					}
					continue
				}
			}
			if err != nil {
				send(kv.KeyUpdate{Key: k, Err: s.watchErr(err)})
				return
			}
		}
	})
	if !ok {
		t.close()
		return nil, s.closedErr()
	}
	return ch, nil
}

// WatchTree implements kv.Store: each update is the full sorted state of
// the prefix after one batch of changes. After a session expiry the tree
// is read again and the new state sent.
func (s *Store) WatchTree(ctx context.Context, prefix string, opts *kv.ReadOptions) (<-chan kv.TreeUpdate, error) {
	k, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: watch tree: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	t := s.newTree(s.path(k), false, true)
	if err := s.callUnbounded(ctx, func() error { return s.loadTree(t, opts) }); err != nil {
		t.close()
		return nil, err
	}
	ch := make(chan kv.TreeUpdate)
	ok := s.goroutines.Go(func() {
		defer close(ch)
		defer t.close()
		send := func(u kv.TreeUpdate) bool {
			return deliver(ctx, s.done, ch, u, func() kv.TreeUpdate {
				return kv.TreeUpdate{Prefix: k, Revision: t.rev, Err: s.closedErr()}
			})
		}
		if !send(kv.TreeUpdate{Prefix: k, Pairs: t.pairs(), Revision: t.rev}) {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				driver.SendLast(ctx, ch, kv.TreeUpdate{Prefix: k, Revision: t.rev, Err: s.closedErr()})
				return
			case <-t.in.wake:
			}
			// As in Events: the state reflects every change up to the
			// zxid seen before the step, and up to the newest one seen
			// only once no notification waits.
			claim := t.rev
			chs, err := t.applyQueued()
			chs = withoutGaps(chs) // a WatchTree update is a whole state: a gap changes none
			if errors.Is(err, errResync) {
				if err = t.reload(); err == nil {
					chs = append(chs, change{}) // always send the re-read state
				}
			}
			if !t.in.pending() {
				claim = t.rev
			}
			if len(chs) > 0 {
				if !send(kv.TreeUpdate{Prefix: k, Pairs: t.pairs(), Revision: claim}) {
					return
				}
			}
			if err != nil {
				send(kv.TreeUpdate{Prefix: k, Revision: t.rev, Err: s.watchErr(err)})
				return
			}
		}
	})
	if !ok {
		t.close()
		return nil, s.closedErr()
	}
	return ch, nil
}

// loadTree reads a new watch's tree; with opts.Consistent, after a read
// barrier (the connected server may be behind the leader).
func (s *Store) loadTree(t *tree, opts *kv.ReadOptions) error {
	if opts != nil && opts.Consistent {
		if err := s.readBarrier(); err != nil {
			return err
		}
	}
	if _, err := t.load(); err != nil || t.in.single || t.rev != 0 {
		return err
	}
	// Nothing below the prefix carries a zxid: take the store's revision
	// (the revision counter's write, as Revision does), then read again, so
	// that the empty (or just filled) state is reported at a revision no
	// later than the one it was read at, as on the other backends. A
	// Store that may not write the counter reports 0, as before.
	r0, err := s.revision()
	if err != nil {
		s.log.Debug("zookeeper: watch tree of an empty prefix: no revision", zap.Error(err))
		return nil
	}
	if _, err := t.load(); err != nil {
		return err
	}
	t.noteZxid(int64(r0))
	return nil
}

// deliver sends v to a watch's reader unless its ctx ends first. If the
// store closes first, the reader gets closing() as its terminal update
// instead.
func deliver[T any](ctx context.Context, done <-chan struct{}, ch chan<- T, v T, closing func() T) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	case <-done:
		driver.SendLast(ctx, ch, closing())
		return false
	}
}

func (s *Store) closedErr() error { return fmt.Errorf("zookeeper: watch: %w", kv.ErrClosed) }

func (s *Store) watchErr(err error) error {
	if s.closed() || errors.Is(err, context.Canceled) {
		return s.closedErr()
	}
	return fmt.Errorf("zookeeper: watch: %w", s.mapErr(err))
}

func samePair(a, b *kv.KVPair) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.LastIndex == b.LastIndex && a.Key == b.Key
}

// withoutGaps drops the gap records of chs (see change.gap): only Events
// claims revisions that a gap bounds.
func withoutGaps(chs []change) []change {
	out := chs[:0:0]
	for _, c := range chs {
		if !c.gap {
			out = append(out, c)
		}
	}
	return out
}
