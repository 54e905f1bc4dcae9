package etcd

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// snapshotPage is how many keys the first request of Snapshot reads; each
// next page is twice as big, up to snapshotMaxPage. Big prefixes are read
// in pages at one revision rather than in one huge response, and the pages
// grow because etcd counts every key from a page's start to the range's
// end to answer it (its Range returns the total): with pages of a fixed
// 1,000 keys, 1,000,000 keys cost a thousand such counts, 180 ms each at
// first here, minutes in all (an informer of that prefix did not sync in
// 15 minutes), where one unpaged read takes 3-5 s. Growing to 131,072 keys
// (about 18 MB of 100-byte values) it takes 14 pages.
const (
	snapshotPage    = 1000
	snapshotMaxPage = 131072
)

// progressInterval is how often an idle Events stream asks the server for a
// progress notification (the contract wants one at least every second).
const progressInterval = 500 * time.Millisecond

// Snapshot reads every pair below prefix at one revision, in pages growing
// from snapshotPage keys: the first page fixes the revision and the next ones
// read at it (WithRev), so the result is consistent even while writers go
// on. A compaction past that revision between pages is ErrCompacted.
func (s *Store) Snapshot(ctx context.Context, prefix string) (kv.Snapshot, error) {
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
	p, err := s.checkPrefix(ctx, "snapshot", prefix)
	if err != nil {
		return kv.Snapshot{}, err
	}
	rp := s.rangePrefix(p)
	end := clientv3.GetPrefixRangeEnd(rp)
	from := rp
	var rev int64
	var pairs []*kv.KVPair
	for page := int64(snapshotPage); ; page = min(2*page, snapshotMaxPage) {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(page)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.c.Get(ctx, from, opts...)
		if err != nil {
			return kv.Snapshot{}, s.mapErr(ctx, "snapshot", p, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		pairs = append(pairs, s.pairsOf(resp.Kvs)...)
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return kv.Snapshot{Pairs: pairs, Revision: uint64(rev)}, nil
}

// Revision returns the header revision of a cheap linearizable read.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
	if err := s.checkOpen(ctx, "revision"); err != nil {
		return 0, err
	}
	resp, err := s.c.Get(ctx, s.internal+"/rev", clientv3.WithCountOnly())
	if err != nil {
		return 0, s.mapErr(ctx, "revision", "", err)
	}
	return uint64(resp.Header.Revision), nil
}

// Events streams the changes below prefix after revision after: one etcd
// watch from after+1, one batch per watch response. The etcd client resumes
// the watch after a disconnect from the last revision it delivered; a watch
// the server cancels for another reason than compaction is re-opened from
// the last revision sent. While idle, the stream asks the server for
// progress every progressInterval so that a progress batch arrives at least
// every second.
func (s *Store) Events(ctx context.Context, prefix string, after uint64) (<-chan kv.EventBatch, error) {
	p, err := s.checkPrefix(ctx, "events", prefix)
	if err != nil {
		return nil, err
	}
	ch := make(chan kv.EventBatch)
	wctx, stop := s.watchContext(ctx)
	if !s.goroutines.Go(func() { s.runEvents(ctx, wctx, stop, ch, p, int64(after)) }) {
		stop()
		return nil, s.checkOpen(context.Background(), "events")
	}
	return ch, nil
}

func (s *Store) runEvents(ctx, wctx context.Context, stop func(), ch chan<- kv.EventBatch, p string, after int64) {
	defer close(ch)
	defer stop()
	end := func(err error) {
		finish(s, ctx, ch, func(err error) kv.EventBatch {
			return kv.EventBatch{Revision: uint64(after), Err: fmt.Errorf("etcd: events %q: %w", p, err)}
		}, err)
	}
	rp := s.rangePrefix(p)
	requested := after
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	idle := true // no events received since the last tick
	for {
		ws := s.openWatch(rp, clientv3.WithPrefix(), clientv3.WithRev(after+1))
	recv:
		for {
			var resp clientv3.WatchResponse
			var ok bool
			select {
			case resp, ok = <-ws.w:
				if !ok {
					break recv
				}
				if resp.Created {
					ws.created = true
					continue
				}
			case <-wctx.Done():
				break recv
			case <-tick.C:
				if idle && !s.progress(wctx, ch, after) {
					ws.close()
					end(nil)
					return
				}
				idle = true
				continue
			}
			if len(resp.Events) > 0 {
				idle = false // progress answers do not count: keep asking
			}
			if resp.CompactRevision != 0 {
				ws.close()
				end(&kv.CompactedError{Requested: uint64(requested), Compacted: uint64(resp.CompactRevision - 1)})
				return
			}
			if err := resp.Err(); err != nil {
				s.log.Info("etcd: event watch cancelled by the server; re-opening", zap.String("prefix", p), zap.Error(err))
				break recv
			}
			b := kv.EventBatch{Events: make([]kv.Event, 0, len(resp.Events))}
			for _, ev := range resp.Events {
				after = ev.Kv.ModRevision
				k, ok := s.userKey(ev.Kv.Key)
				if !ok {
					continue
				}
				e := kv.Event{Type: kv.EventPut, Pair: s.pair(k, ev.Kv.Value, ev.Kv.ModRevision)}
				if ev.Type == mvccpb.DELETE {
					e = kv.Event{Type: kv.EventDelete, Pair: &kv.KVPair{Key: k, Revision: uint64(ev.Kv.ModRevision)}}
				}
				b.Events = append(b.Events, e)
			}
			if len(resp.Events) == 0 {
				// A progress notification: everything up to the header
				// revision has been delivered.
				if resp.Header.Revision <= after {
					continue
				}
				after = resp.Header.Revision
			}
			b.Revision = uint64(after)
			if !driver.Send(wctx, ch, b) {
				ws.close()
				end(nil)
				return
			}
		}
		ws.close()
		if wctx.Err() != nil {
			end(nil)
			return
		}
		if err := s.checkReachable(wctx); err != nil {
			end(err)
			return
		}
	}
}

// progress makes an idle stream send a progress notice. etcd answers a
// progress request only for watches whose start revision it has reached
// (server/storage/mvcc progressIfSync), and a watch that is caught up on a
// store where nothing is written starts one past the store's revision: it
// would never hear back. So: read the store's revision first. When nothing
// was written after the last revision delivered, the stream is caught up by
// definition and the notice is sent here; otherwise the watch has a start
// revision the server has reached, and the server is asked. A read that
// fails sends nothing: a subscriber that stops getting notices knows the
// server is out of reach. It returns false when ctx ended.
func (s *Store) progress(ctx context.Context, ch chan<- kv.EventBatch, after int64) bool {
	rctx, cancel := context.WithTimeout(ctx, progressInterval)
	resp, err := s.c.Get(rctx, s.internal+"/rev", clientv3.WithCountOnly())
	cancel()
	switch {
	case err != nil:
		s.log.Debug("etcd: progress read failed", zap.Error(err))
	case resp.Header.Revision <= after:
		return driver.Send(ctx, ch, kv.EventBatch{Revision: uint64(after)})
	default:
		// Goes to every watch on this client's stream; the others ignore
		// progress notifications. The client picks the stream by the ctx's
		// outgoing metadata, so the request must carry the watch's own
		// (openWatch), not whatever the caller's ctx carries.
		pctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(s.ctx), progressInterval)
		defer cancel()
		if err := s.c.RequestProgress(pctx); err != nil && ctx.Err() == nil {
			s.log.Debug("etcd: progress request failed", zap.Error(err))
		}
	}
	return ctx.Err() == nil
}

// checkReachable tells a watch that ended for good (client closed) from one
// the server cancelled and that is worth re-opening.
func (s *Store) checkReachable(ctx context.Context) error {
	_, err := s.getRetry(ctx, "events", "", s.internal+"/rev", clientv3.WithCountOnly())
	return err
}
