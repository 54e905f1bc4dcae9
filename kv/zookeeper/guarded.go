package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/kv"
)

// GuardedPut implements kv.Locker with a multi: check(lock znode) + the
// write. TTL keys cannot be written this way (go-zookeeper's multi cannot
// create TTL znodes): ErrCallNotSupported.
func (l *locker) GuardedPut(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	s := l.s
	k, err := s.checkWrite("guarded put", key, value, opts)
	if err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	node, err := l.held()
	if err != nil {
		return err
	}
	m := modeFor(opts)
	if m.kind == kindTTL {
		return fmt.Errorf("zookeeper: guarded put %q with a TTL: a multi cannot create TTL znodes: %w", k, kv.ErrCallNotSupported)
	}
	p, data := s.path(k), encode(value)
	guard := &zk.CheckVersionRequest{Path: node, Version: 0}
	w := s.mutation()
	return l.guarded(ctx, w, "guarded put", k, func() error {
		for range maxRaces {
			exists, st, err := s.conn.Exists(p)
			if err != nil {
				return err
			}
			var ops []any
			switch {
			case !exists:
				if err := s.ensurePath(parent(p)); err != nil {
					return err
				}
				ops = []any{guard, &zk.CreateRequest{Path: p, Data: data, Acl: s.acl, Flags: flagsFor(m)}}
			case s.matches(st, nil, m):
				ops = []any{guard, &zk.SetDataRequest{Path: p, Data: data, Version: st.Version}}
			case st.NumChildren > 0:
				return fmt.Errorf("zookeeper: %q has keys below it: %w", k, kv.ErrCallNotSupported)
			default:
				ops = append([]any{guard}, replaceOps(p, data, s.acl, flagsFor(m), st.Version)...)
			}
			res, err := w.multi(ops...)
			if err != nil && len(res) > 0 && res[0].Error != nil && !errors.Is(res[0].Error, zk.ErrUnknown) && !isRollback(res[0].Error) {
				return errLockLost
			}
			if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrNodeExists) {
				continue
			}
			if err == nil {
				s.record(p, data, m, true)
			}
			return err
		}
		return fmt.Errorf("zookeeper: guarded put %q: %w", k, kv.ErrKeyModified)
	})
}

var errLockLost = errors.New("lock znode gone")

// isRollback tells the code ZooKeeper gives the ops of a failed multi
// that did not fail themselves.
func isRollback(err error) bool {
	return err == nil || strings.Contains(err.Error(), "runtime inconsistency") || errors.Is(err, zk.ErrAPIError)
}

// GuardedDelete implements kv.Locker.
func (l *locker) GuardedDelete(ctx context.Context, key string) error {
	s := l.s
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return fmt.Errorf("zookeeper: guarded delete: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	node, err := l.held()
	if err != nil {
		return err
	}
	p := s.path(k)
	guard := &zk.CheckVersionRequest{Path: node, Version: 0}
	w := s.mutation()
	return l.guarded(ctx, w, "guarded delete", k, func() error {
		for range maxRaces {
			data, st, err := w.getFresh(p, isKey)
			if errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("zookeeper: guarded delete %q: %w", k, kv.ErrKeyNotFound)
			}
			if err != nil {
				return err
			}
			if _, isKey := decode(data); !isKey {
				return fmt.Errorf("zookeeper: guarded delete %q: %w", k, kv.ErrKeyNotFound)
			}
			// A delete clears the data; a KeepAlive key's znode goes (see
			// mutation.removeAt).
			ops := []any{guard, &zk.SetDataRequest{Path: p, Data: nil, Version: st.Version}}
			var e ephemeral
			var had bool
			if st.EphemeralOwner != 0 {
				ops = []any{guard, &zk.DeleteRequest{Path: p, Version: st.Version}}
				e, had = s.takeEphemeral(p) // see takeEphemeral
			}
			res, err := w.multi(ops...)
			if err != nil && had && (notApplied(err) || (len(res) > 0 && res[0].Error != nil)) {
				s.putBackEphemeral(p, e)
			}
			if err != nil && len(res) > 0 && res[0].Error != nil && !isRollback(res[0].Error) {
				return errLockLost
			}
			if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrNotEmpty) {
				continue
			}
			if err == nil {
				s.forget(p)
			}
			return err
		}
		return fmt.Errorf("zookeeper: guarded delete %q: %w", k, kv.ErrKeyModified)
	})
}

func (l *locker) guarded(ctx context.Context, w *mutation, op, k string, fn func() error) error {
	err := l.s.callWrite(ctx, w, fn)
	if errors.Is(err, errLockLost) {
		return fmt.Errorf("zookeeper: %s %q: the server no longer has this lock's znode: %w", op, k, kv.ErrLockLost)
	}
	return err
}
