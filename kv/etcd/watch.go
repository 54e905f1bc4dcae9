package etcd

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cenkalti/backoff/v4"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Watch follows one key: a linearizable Get, then an etcd watch from the
// Get's revision + 1, so nothing falls between the two. A dropped connection
// is resumed by the etcd client from the last revision seen; when the
// server cancels the watch (history compacted, leader lost) it is re-read
// and re-opened, and the new state is sent only if it differs from the last
// one sent.
func (s *Store) Watch(ctx context.Context, key string, _ *kv.ReadOptions) (<-chan kv.KeyUpdate, error) {
	k, err := s.checkKey(ctx, "watch", key)
	if err != nil {
		return nil, err
	}
	ek := s.etcdKey(k)
	resp, err := s.c.Get(ctx, ek)
	if err != nil {
		return nil, s.mapErr(ctx, "watch", k, err)
	}
	var cur *kv.KVPair
	if len(resp.Kvs) > 0 {
		cur = s.pair(k, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
	}
	ch := make(chan kv.KeyUpdate)
	wctx, stop := s.watchContext(ctx)
	if !s.goroutines.Go(func() { s.runKeyWatch(ctx, wctx, stop, ch, k, cur, resp.Header.Revision) }) {
		stop()
		return nil, s.checkOpen(context.Background(), "watch")
	}
	return ch, nil
}

func (s *Store) runKeyWatch(ctx, wctx context.Context, stop func(), ch chan<- kv.KeyUpdate, k string, last *kv.KVPair, rev int64) {
	defer close(ch)
	defer stop()
	ek := s.etcdKey(k)
	end := func(err error) {
		finish(s, ctx, ch, func(err error) kv.KeyUpdate {
			return kv.KeyUpdate{Key: k, Err: fmt.Errorf("etcd: watch %q: %w", k, err)}
		}, err)
	}
	// The first update waits until the server has created the watch: a
	// reader that got it knows that the watch is live (etcd parks watches
	// it has not created yet until its next 100 ms sync), and a watch
	// cancelled before its creation would leave the client's stream open.
	initial := true
	for {
		ws := s.openWatch(ek, clientv3.WithRev(rev+1))
		if !s.followKey(wctx, ws, ch, k, &last, &rev, &initial) {
			ws.close()
			end(nil)
			return
		}
		ws.close()
		if wctx.Err() != nil {
			end(nil)
			return
		}
		resp, err := s.getRetry(wctx, "watch", k, ek)
		if err != nil {
			end(err)
			return
		}
		rev = resp.Header.Revision
		var cur *kv.KVPair
		if len(resp.Kvs) > 0 {
			cur = s.pair(k, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
		}
		if initial || lastIndex(cur) != lastIndex(last) {
			initial = false
			last = cur
			if !driver.Send(wctx, ch, kv.KeyUpdate{Key: k, Pair: last}) {
				end(nil)
				return
			}
		}
	}
}

// followKey forwards one watch's events until the watch ends (true) or the
// reader's ctx does (false).
func (s *Store) followKey(wctx context.Context, ws *watchStream, ch chan<- kv.KeyUpdate, k string, last **kv.KVPair, rev *int64, initial *bool) bool {
	for {
		resp, ok := ws.next(wctx)
		if !ok {
			return wctx.Err() == nil
		}
		if err := resp.Err(); err != nil {
			s.log.Info("etcd: watch cancelled by the server; re-reading", zap.String("key", k), zap.Error(err))
			return true
		}
		if *initial && resp.Created {
			*initial = false
			if !driver.Send(wctx, ch, kv.KeyUpdate{Key: k, Pair: *last}) {
				return false
			}
		}
		for _, ev := range resp.Events {
			*rev = ev.Kv.ModRevision
			*last = nil
			if ev.Type == mvccpb.PUT {
				*last = s.pair(k, ev.Kv.Value, ev.Kv.ModRevision)
			}
			if !driver.Send(wctx, ch, kv.KeyUpdate{Key: k, Pair: *last}) {
				return false
			}
		}
	}
}

// WatchTree follows every key below prefix like Watch, keeping the state in
// a sorted slice so that each change costs one insertion or removal, not a
// re-list. All changes of one transaction (one revision) make one update.
// The Pairs of successive updates share unchanged *KVPair values: treat
// them as read-only.
func (s *Store) WatchTree(ctx context.Context, prefix string, _ *kv.ReadOptions) (<-chan kv.TreeUpdate, error) {
	p, err := s.checkPrefix(ctx, "watch tree", prefix)
	if err != nil {
		return nil, err
	}
	rp := s.rangePrefix(p)
	resp, err := s.c.Get(ctx, rp, clientv3.WithPrefix())
	if err != nil {
		return nil, s.mapErr(ctx, "watch tree", p, err)
	}
	ch := make(chan kv.TreeUpdate)
	wctx, stop := s.watchContext(ctx)
	t := &treeState{prefix: p, pairs: s.pairsOf(resp.Kvs), rev: resp.Header.Revision}
	if !s.goroutines.Go(func() { s.runTreeWatch(ctx, wctx, stop, ch, t) }) {
		stop()
		return nil, s.checkOpen(context.Background(), "watch tree")
	}
	return ch, nil
}

type treeState struct {
	prefix string
	pairs  []*kv.KVPair // sorted by key
	rev    int64
}

func (t *treeState) update() kv.TreeUpdate {
	return kv.TreeUpdate{Prefix: t.prefix, Pairs: slices.Clone(t.pairs), Revision: uint64(t.rev)}
}

func (t *treeState) apply(key string, p *kv.KVPair) {
	i, found := slices.BinarySearchFunc(t.pairs, key, func(e *kv.KVPair, k string) int { return strings.Compare(e.Key, k) })
	switch {
	case p == nil && found:
		t.pairs = slices.Delete(t.pairs, i, i+1)
	case p != nil && found:
		t.pairs[i] = p
	case p != nil:
		t.pairs = slices.Insert(t.pairs, i, p)
	}
}

func (s *Store) runTreeWatch(ctx, wctx context.Context, stop func(), ch chan<- kv.TreeUpdate, t *treeState) {
	defer close(ch)
	defer stop()
	rp := s.rangePrefix(t.prefix)
	end := func(err error) {
		finish(s, ctx, ch, func(err error) kv.TreeUpdate {
			return kv.TreeUpdate{Prefix: t.prefix, Err: fmt.Errorf("etcd: watch tree %q: %w", t.prefix, err)}
		}, err)
	}
	initial := true // sent once the server created the watch, as in Watch
	for {
		ws := s.openWatch(rp, clientv3.WithPrefix(), clientv3.WithRev(t.rev+1))
		if !s.followTree(wctx, ws, ch, t, &initial) {
			ws.close()
			end(nil)
			return
		}
		ws.close()
		if wctx.Err() != nil {
			end(nil)
			return
		}
		resp, err := s.getRetry(wctx, "watch tree", t.prefix, rp, clientv3.WithPrefix())
		if err != nil {
			end(err)
			return
		}
		fresh := s.pairsOf(resp.Kvs)
		t.rev = resp.Header.Revision
		if initial || !driver.SamePairs(fresh, t.pairs) {
			initial = false
			t.pairs = fresh
			if !driver.Send(wctx, ch, t.update()) {
				end(nil)
				return
			}
		}
	}
}

// followTree applies one watch's events to t and sends a snapshot per
// revision, until the watch ends (true) or the reader's ctx does (false).
func (s *Store) followTree(wctx context.Context, ws *watchStream, ch chan<- kv.TreeUpdate, t *treeState, initial *bool) bool {
	for {
		resp, ok := ws.next(wctx)
		if !ok {
			return wctx.Err() == nil
		}
		if err := resp.Err(); err != nil {
			s.log.Info("etcd: watch cancelled by the server; re-listing", zap.String("prefix", t.prefix), zap.Error(err))
			return true
		}
		if *initial && resp.Created {
			*initial = false
			if !driver.Send(wctx, ch, t.update()) {
				return false
			}
		}
		evs := resp.Events
		for i := 0; i < len(evs); {
			rev := evs[i].Kv.ModRevision
			visible := false // internal keys (locks) change nothing a user sees
			for ; i < len(evs) && evs[i].Kv.ModRevision == rev; i++ {
				if k, ok := s.userKey(evs[i].Kv.Key); ok {
					var p *kv.KVPair
					if evs[i].Type == mvccpb.PUT {
						p = s.pair(k, evs[i].Kv.Value, rev)
					}
					t.apply(k, p)
					visible = true
				}
			}
			t.rev = rev
			if visible && !driver.Send(wctx, ch, t.update()) {
				return false
			}
		}
	}
}

// pairsOf converts a range read, dropping internal keys. The pairs are
// allocated in one block: one allocation instead of one per key.
func (s *Store) pairsOf(kvs []*mvccpb.KeyValue) []*kv.KVPair {
	pairs := make([]*kv.KVPair, 0, len(kvs))
	block := make([]kv.KVPair, len(kvs))
	for i, kvp := range kvs {
		if k, ok := s.userKey(kvp.Key); ok {
			v := kvp.Value
			if v == nil {
				v = []byte{}
			}
			block[i] = kv.KVPair{Key: k, Value: v, LastIndex: uint64(kvp.ModRevision), Revision: uint64(kvp.ModRevision)}
			pairs = append(pairs, &block[i])
		}
	}
	return pairs
}

// watchContext returns the context of one watch: it ends with the caller's
// ctx or with the Store, and asks etcd to cancel the watch when the member
// loses its leader (instead of silently serving nothing).
func (s *Store) watchContext(ctx context.Context) (context.Context, func()) {
	wctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.ctx, cancel)
	return clientv3.WithRequireLeader(wctx), func() { unhook(); cancel() }
}

// getRetry re-reads after the server cancelled a watch, retrying while the
// server is unreachable; other errors are returned, mapped.
func (s *Store) getRetry(ctx context.Context, op, name, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	b := backoff.NewExponentialBackOff()
	b.MaxElapsedTime = 0 // the watch lives until ctx ends
	var resp *clientv3.GetResponse
	err := backoff.Retry(func() error {
		r, err := s.c.Get(ctx, key, opts...)
		if err != nil {
			err = s.mapErr(ctx, op, name, err)
			if isRetryable(err) && ctx.Err() == nil {
				s.log.Debug("etcd: re-read failed; retrying", zap.String("key", name), zap.Error(err))
				return err
			}
			return backoff.Permanent(err)
		}
		resp = r
		return nil
	}, backoff.WithContext(b, ctx))
	return resp, err
}

// finish sends the terminal update of a watch, if it has one: err when
// set, ErrClosed when the Store closed, nothing when the caller's ctx ended
// (the caller knows why). The send gives way to the caller's ctx and, after
// driver.CloseGrace, to a reader that stopped reading.
func finish[T any](s *Store, ctx context.Context, ch chan<- T, withErr func(error) T, err error) {
	if ctx.Err() != nil {
		return
	}
	switch {
	case s.ctx.Err() != nil:
		// Whatever failed, it failed because the Store closed.
		err = kv.ErrClosed
	case err == nil:
		return
	}
	driver.SendLast(ctx, ch, withErr(err))
}

func lastIndex(p *kv.KVPair) uint64 {
	if p == nil {
		return 0
	}
	return p.LastIndex
}
