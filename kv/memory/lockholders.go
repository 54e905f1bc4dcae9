package memory

import (
	"context"
	"fmt"

	"github.com/regentkv/regent/kv"
)

var _ kv.LockInspector = (*Store)(nil)

// LockHolders implements kv.LockInspector: the holder only (waiters are
// goroutines of their own clients, queued nowhere), with the revision it
// took the lock at as its token and its client as ID.
func (s *Store) LockHolders(ctx context.Context, key string) ([]kv.LockHolder, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, fmt.Errorf("memory: lock holders: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.b.mu.Unlock()
	st := s.b.locks[k]
	if st == nil || st.holder == nil {
		return []kv.LockHolder{}, nil
	}
	return []kv.LockHolder{{Value: append([]byte{}, st.value...), Holding: true, Token: st.token,
		ID: fmt.Sprintf("client %p", st.holder.s)}}, nil
}
