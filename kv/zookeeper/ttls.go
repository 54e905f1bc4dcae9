package zookeeper

import (
	"context"
	"fmt"

	"github.com/regentkv/regent/kv"
)

var _ kv.TTLReporter = (*Store)(nil)

// TTLs implements kv.TTLReporter, from one walk of the prefix: a TTL
// key's TTL is recorded in its data; a KeepAlive key is an ephemeral
// znode, which lives as long as its session, so its TTL is the session
// timeout the server granted this Store (the writer's may differ).
func (s *Store) TTLs(ctx context.Context, prefix string) (map[string]kv.KeyTTL, error) {
	k, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: ttls: %w", err)
	}
	out := map[string]kv.KeyTTL{}
	err = s.call(ctx, func() error {
		p := s.path(k)
		nodes, err := s.walk(ctx, p, false, false)
		if err != nil {
			return err
		}
		clear(out)
		for _, n := range nodes {
			switch {
			case !n.isKey || n.path == p:
			case n.stat.EphemeralOwner != 0:
				out[s.key(n.path)] = kv.KeyTTL{TTL: s.sessionTimeout(), KeepAlive: true}
			case n.ttl > 0:
				out[s.key(n.path)] = kv.KeyTTL{TTL: n.ttl}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("zookeeper: ttls %q: %w", k, err)
	}
	return out, nil
}
