package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/kv"
)

var _ kv.LockInspector = (*Store)(nil)

// LockHolders implements kv.LockInspector: the lock's contender znodes in
// sequence order, the first holding (its czxid is its fencing token), as
// Lock decides. ID is the znode's name. A contender that goes between the
// child list and its read is left out.
func (s *Store) LockHolders(ctx context.Context, key string) ([]kv.LockHolder, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: lock holders: %w", err)
	}
	dir := s.root + "/" + locksDir + "/" + escapeKey(k) + "/" + lockLeaf
	var out []kv.LockHolder
	err = s.call(ctx, func() error {
		out = nil
		children, _, err := s.conn.Children(dir)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		sort.Slice(children, func(i, j int) bool { return seqOf(children[i]) < seqOf(children[j]) })
		for _, c := range children {
			data, st, err := s.conn.Get(dir + "/" + c)
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				return err
			}
			h := kv.LockHolder{Value: data, Holding: len(out) == 0, ID: c}
			if h.Value == nil {
				h.Value = []byte{}
			}
			if h.Holding {
				h.Token = uint64(st.Czxid)
			}
			out = append(out, h)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("zookeeper: lock holders %q: %w", k, err)
	}
	return out, nil
}
