package etcd

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/kv"
)

var _ kv.TTLReporter = (*Store)(nil)

// ttlReads is how many lease (or session) reads TTLs keeps in flight.
const ttlReads = 16

// TTLs implements kv.TTLReporter: the leased keys below prefix, with
// their lease's granted TTL and what is left of it, one TimeToLive per
// lease. A KeepAlive key is a leased key too (on its Store's lease, kept
// alive): etcd cannot tell it from a TTL key, so KeepAlive is never set.
// Each call is bounded on its own (Config.RequestTimeout), the lease reads
// a few at a time: a tree of many TTL keys has as many leases.
func (s *Store) TTLs(ctx context.Context, prefix string) (map[string]kv.KeyTTL, error) {
	p, err := s.checkPrefix(ctx, "ttls", prefix)
	if err != nil {
		return nil, err
	}
	lctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
	resp, err := s.c.Get(lctx, s.rangePrefix(p), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, s.mapErr(ctx, "ttls", p, err)
	}
	byLease := map[clientv3.LeaseID][]string{}
	for _, c := range resp.Kvs {
		if k, ok := s.userKey(c.Key); ok && c.Lease != 0 {
			byLease[clientv3.LeaseID(c.Lease)] = append(byLease[clientv3.LeaseID(c.Lease)], k)
		}
	}
	out := make(map[string]kv.KeyTTL, len(resp.Kvs))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ttlReads)
	for id, keys := range byLease {
		g.Go(func() error {
			cctx, done := kv.BoundRequest(gctx, s.reqTO)
			defer done()
			l, err := s.c.TimeToLive(cctx, id)
			if err != nil {
				return s.mapErr(cctx, "ttls", p, err)
			}
			if l.TTL <= 0 {
				return nil // expired since the listing: its keys are gone
			}
			t := kv.KeyTTL{TTL: time.Duration(l.GrantedTTL) * time.Second, Remaining: time.Duration(l.TTL) * time.Second}
			mu.Lock()
			defer mu.Unlock()
			for _, k := range keys {
				out[k] = t
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
