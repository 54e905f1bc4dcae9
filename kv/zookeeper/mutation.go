package zookeeper

import (
	"time"

	"github.com/go-zookeeper/zk"
)

// mutation is one write call (a Put, a Delete, ...) on its way to the
// server: the Store, plus whether any of the call's requests has changed
// the tree yet. A write made of several requests that fails after one of
// them applied has changed something: its error must say the outcome is
// unknown (see callWrite), even when the failing request itself never
// left (ErrNoServer). Every request that may change data goes through the
// methods below.
type mutation struct {
	*Store
	applied bool
}

func (s *Store) mutation() *mutation { return &mutation{Store: s} }

func (w *mutation) note(err error) {
	if err == nil {
		w.applied = true
	}
}

func (w *mutation) set(p string, data []byte, version int32) (*zk.Stat, error) {
	st, err := w.conn.Set(p, data, version)
	w.note(err)
	return st, err
}

func (w *mutation) del(p string, version int32) error {
	err := w.conn.Delete(p, version)
	w.note(err)
	return err
}

func (w *mutation) doMulti(ops ...any) ([]zk.MultiResponse, error) {
	res, err := w.conn.Multi(ops...)
	w.note(err)
	return res, err
}

func (w *mutation) createNode(p string, data []byte, flags int32) (string, error) {
	path, err := w.conn.Create(p, data, flags, w.acl)
	w.note(err)
	return path, err
}

func (w *mutation) createTTLNode(p string, data []byte, ttl time.Duration) (string, error) {
	path, err := w.conn.CreateTTL(p, data, zk.FlagTTL, w.acl, ttl)
	w.note(err)
	return path, err
}

func (w *mutation) setACL(p string, version int32) (*zk.Stat, error) {
	st, err := w.conn.SetACL(p, w.acl, version)
	w.note(err)
	return st, err
}
