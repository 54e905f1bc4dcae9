package consul

import (
	"context"

	"github.com/regentkv/regent/kv"
)

var _ kv.LockInspector = (*Store)(nil)

// LockHolders implements kv.LockInspector: the holder only, with its
// session as ID and the lock key's ModifyIndex as its token. Consul
// queues no waiters (each one blocks on the lock key by itself), so
// there is nobody else to list.
func (s *Store) LockHolders(ctx context.Context, key string) ([]kv.LockHolder, error) {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	k, err := s.checkKey(ctx, "lock holders", key)
	if err != nil {
		return nil, err
	}
	p, _, err := s.kv.Get(s.lockKey(k), s.queryOpts(ctx, true))
	if err = s.translate(ctx, "lock holders", k, err); err != nil {
		return nil, err
	}
	if p == nil || p.Session == "" {
		return []kv.LockHolder{}, nil
	}
	v := p.Value
	if v == nil {
		v = []byte{}
	}
	return []kv.LockHolder{{Value: v, Holding: true, Token: p.ModifyIndex, ID: p.Session}}, nil
}
