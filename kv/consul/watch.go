package consul

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Watch follows key with blocking queries, shared with the Store's other
// watches of keys in the same directory (see watchHub). The first update
// is read before Watch returns, so a write made after Watch returns is
// always a later update. Consul has no change feed: changes that happen
// between two answers are coalesced into the latest state (the watch never
// reports a stale state, but may skip intermediate ones).
func (s *Store) Watch(ctx context.Context, key string, opts *kv.ReadOptions) (<-chan kv.KeyUpdate, error) {
	k, err := s.checkKey(ctx, "watch", key)
	if err != nil {
		return nil, err
	}
	ck := s.consulKey(k)
	consistent := opts != nil && opts.Consistent
	w := &keyWatch{s: s, k: k, ck: ck, consistent: consistent, ch: make(chan kv.KeyUpdate), wake: make(chan struct{}, 1)}
	// Attached before the first read: a change the hub's queries see after
	// that is either in the read or handed on after it (see prime).
	s.attach(w)
	first, meta, err := s.kv.Get(ck, s.queryOpts(ctx, consistent))
	if err != nil {
		w.hub.leave(w)
		return nil, s.translate(ctx, "watch", k, err)
	}
	firstUpdate := w.hub.prime(w, first, meta.LastIndex)
	err = s.spawnWatch(ctx, func(wctx context.Context) error {
		defer close(w.ch)
		if !driver.Send(wctx, w.ch, firstUpdate) {
			w.hub.leave(w)
			endWatch(ctx, s.gone(), w.ch, kv.KeyUpdate{Key: k}, keyClosed)
			return wctx.Err()
		}
		w.run(ctx, wctx)
		return nil
	})
	if err != nil {
		w.hub.leave(w)
		return nil, fmt.Errorf("consul: watch %q: %w", k, err)
	}
	return w.ch, nil
}

// WatchTree follows every key strictly below prefix with blocking list
// queries; each update is the full sorted list, sent when any key was
// added, changed or removed. Changes between two answers are coalesced as
// for Watch.
func (s *Store) WatchTree(ctx context.Context, prefix string, opts *kv.ReadOptions) (<-chan kv.TreeUpdate, error) {
	p, err := s.checkPrefix(ctx, "watch tree", prefix)
	if err != nil {
		return nil, err
	}
	consistent := opts != nil && opts.Consistent
	first, index, err := s.list(ctx, p, &api.QueryOptions{RequireConsistent: consistent})
	if err != nil {
		return nil, err
	}
	ch := make(chan kv.TreeUpdate)
	err = s.spawnWatch(ctx, func(wctx context.Context) error {
		defer close(ch)
		last := first
		if !driver.Send(wctx, ch, kv.TreeUpdate{Prefix: p, Pairs: first, Revision: index}) {
			endWatch(ctx, s.gone(), ch, kv.TreeUpdate{Prefix: p}, treeClosed)
			return wctx.Err()
		}
		b := s.newBlocker(index, s.cfg.WaitTime, consistent)
		for {
			var pairs []*kv.KVPair
			var rev uint64
			out, err := b.next(wctx, "watch tree", p, func(q *api.QueryOptions) (uint64, error) {
				var err error
				pairs, rev, err = s.list(wctx, p, q)
				return rev, err
			})
			if err != nil {
				endWatch(ctx, s.gone(), ch, kv.TreeUpdate{Prefix: p, Err: err}, treeClosed)
				return err
			}
			if out == retry {
				continue
			}
			if driver.SamePairs(last, pairs) {
				b.spurious()
				continue
			}
			b.useful()
			last = pairs
			if !driver.Send(wctx, ch, kv.TreeUpdate{Prefix: p, Pairs: pairs, Revision: rev}) {
				endWatch(ctx, s.gone(), ch, kv.TreeUpdate{Prefix: p}, treeClosed)
				return wctx.Err()
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("consul: watch tree %q: %w", p, err)
	}
	return ch, nil
}

// spawnWatch runs f on a goroutine with a ctx that ends with the caller's
// ctx or with the Store.
func (s *Store) spawnWatch(ctx context.Context, f func(wctx context.Context) error) error {
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	err := s.spawn(func() {
		defer cancel()
		defer stop()
		_ = f(wctx)
	})
	if err != nil {
		stop()
		cancel()
	}
	return err
}

// endWatch sends the terminal update of a watch whose loop ended. When the
// caller's ctx ended, nothing is sent: the caller left. When the Store
// ended (gone: kv.ErrClosed after Close, kv.ErrNotReachable after a kill;
// read from the Store, since the watch's own ctx learns of it a moment
// later), the update carries that error (set by withErr) and is offered
// for driver.CloseGrace. Any other error is sent, giving way only to the
// caller's ctx.
func endWatch[T any](userCtx context.Context, gone error, ch chan<- T, upd T, withErr func(T, error) T) {
	if userCtx.Err() != nil {
		return
	}
	if gone != nil {
		driver.SendLast(userCtx, ch, withErr(upd, gone))
		return
	}
	driver.Send(userCtx, ch, upd)
}

// gone says whether the Store has ended, and how.
func (s *Store) gone() error {
	switch {
	case s.closed.Load():
		return kv.ErrClosed
	case s.killed.Load():
		return fmt.Errorf("%w: the client was killed", kv.ErrNotReachable)
	}
	return nil
}

func keyClosed(u kv.KeyUpdate, err error) kv.KeyUpdate {
	u.Err = fmt.Errorf("consul: watch %q: %w", u.Key, err)
	return u
}

func treeClosed(u kv.TreeUpdate, err error) kv.TreeUpdate {
	u.Err = fmt.Errorf("consul: watch tree %q: %w", u.Prefix, err)
	return u
}

func (s *Store) keyUpdate(k string, p *api.KVPair) kv.KeyUpdate {
	u := kv.KeyUpdate{Key: k}
	if p != nil {
		u.Pair = s.pair(p)
	}
	return u
}

func sameEntry(a, b *api.KVPair) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.ModifyIndex == b.ModifyIndex
}
