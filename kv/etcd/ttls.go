package etcd

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/kv"
)

var _ kv.TTLReporter = (*Store)(nil)

// TTLs implements kv.TTLReporter: the leased keys below prefix, with
// their lease's granted TTL and what is left of it, one TimeToLive per
// lease. A KeepAlive key is a leased key too (on its Store's lease, kept
// alive): etcd cannot tell it from a TTL key, so KeepAlive is never set.
func (s *Store) TTLs(ctx context.Context, prefix string) (map[string]kv.KeyTTL, error) {
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
	p, err := s.checkPrefix(ctx, "ttls", prefix)
	if err != nil {
		return nil, err
	}
	resp, err := s.c.Get(ctx, s.rangePrefix(p), clientv3.WithPrefix(), clientv3.WithKeysOnly())
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
	for id, keys := range byLease {
		l, err := s.c.TimeToLive(ctx, id)
		if err != nil {
			return nil, s.mapErr(ctx, "ttls", p, err)
		}
		if l.TTL <= 0 {
			continue // expired since the listing: its keys are gone
		}
		t := kv.KeyTTL{TTL: time.Duration(l.GrantedTTL) * time.Second, Remaining: time.Duration(l.TTL) * time.Second}
		for _, k := range keys {
			out[k] = t
		}
	}
	return out, nil
}
