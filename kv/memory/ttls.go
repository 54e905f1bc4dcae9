package memory

import (
	"context"
	"fmt"

	"github.com/regentkv/regent/kv"
)

var _ kv.TTLReporter = (*Store)(nil)

// TTLs implements kv.TTLReporter.
func (s *Store) TTLs(ctx context.Context, prefix string) (map[string]kv.KeyTTL, error) {
	p, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("memory: ttls: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.b.mu.Unlock()
	out := map[string]kv.KeyTTL{}
	s.b.belowLocked(p, func(k string, e *entry) bool {
		if e.ttl > 0 {
			out[k] = kv.KeyTTL{TTL: e.ttl, KeepAlive: e.owner != nil}
		}
		return true
	})
	return out, nil
}
