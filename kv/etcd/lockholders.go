package etcd

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/kv"
)

var _ kv.LockInspector = (*Store)(nil)

// LockHolders implements kv.LockInspector: the contender keys of the lock
// in CreateRevision order, the first holding (its CreateRevision is its
// fencing token), as Lock decides. ID is the contender's lease, in hex as
// etcdctl prints it.
func (s *Store) LockHolders(ctx context.Context, key string) ([]kv.LockHolder, error) {
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
	k, err := s.checkKey(ctx, "lock holders", key)
	if err != nil {
		return nil, err
	}
	pfx := s.internal + "/locks/" + k + "/" + kv.ReservedSegmentPrefix + "/"
	resp, err := s.c.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return nil, s.mapErr(ctx, "lock holders", k, err)
	}
	out := make([]kv.LockHolder, 0, len(resp.Kvs))
	for i, c := range resp.Kvs {
		h := kv.LockHolder{Value: c.Value, Holding: i == 0, ID: fmt.Sprintf("%x", c.Lease)}
		if h.Value == nil {
			h.Value = []byte{}
		}
		if i == 0 {
			h.Token = uint64(c.CreateRevision)
		}
		if h.ID == "0" {
			h.ID = strings.TrimPrefix(string(c.Key), pfx)
		}
		out = append(out, h)
	}
	return out, nil
}
