package etcd

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

var _ kv.TTLReporter = (*Store)(nil)

// TTLs implements kv.TTLReporter: the leased keys below prefix, with
// their lease's granted TTL and what is left of it, one TimeToLive per
// lease. A KeepAlive key is a leased key too (on its Store's lease, kept
// alive): etcd cannot tell it from a TTL key, so KeepAlive is never set.
// Each call is bounded on its own (Config.RequestTimeout), the lease reads
// a few at a time (driver.TTLsByHolder): a tree of many TTL keys has as
// many leases.
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
	return driver.TTLsByHolder(ctx, s.reqTO, byLease, func(ctx context.Context, id clientv3.LeaseID) (kv.KeyTTL, bool, error) {
		l, err := s.c.TimeToLive(ctx, id)
		if err != nil {
			return kv.KeyTTL{}, false, s.mapErr(ctx, "ttls", p, err)
		}
		// TTL <= 0: expired since the listing, its keys are gone.
		return kv.KeyTTL{TTL: time.Duration(l.GrantedTTL) * time.Second, Remaining: time.Duration(l.TTL) * time.Second}, l.TTL > 0, nil
	})
}
