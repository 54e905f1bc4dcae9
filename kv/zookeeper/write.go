package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/kv"
)

// maxRaces bounds the retries of a write that keeps losing races with
// other writers (version conflicts between its read and its write).
const maxRaces = 32

func (s *Store) checkWrite(op, key string, value []byte, opts *kv.WriteOptions) (string, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return "", fmt.Errorf("zookeeper: %s: %w", op, err)
	}
	if err := kv.CheckValue(value); err != nil {
		return "", fmt.Errorf("zookeeper: %s %q: %w", op, k, err)
	}
	if err := s.checkOptions(opts); err != nil {
		return "", fmt.Errorf("zookeeper: %s %q: %w", op, k, err)
	}
	return k, nil
}

// checkOptions is kv.CheckWriteOptions with the ZooKeeper minimum, and the
// session timeout as the minimum of a KeepAlive TTL.
func (s *Store) checkOptions(opts *kv.WriteOptions) error {
	if err := kv.CheckWriteOptions(opts, MinTTL); err != nil {
		return err
	}
	if opts != nil && opts.KeepAlive {
		return s.checkSessionTTL(opts.TTL)
	}
	return nil
}

// checkSessionTTL refuses a TTL for something that lives as long as the
// session (a KeepAlive key, a lock) when it is below the session timeout:
// such a thing outlives a dead client by the session timeout, longer than
// its TTL promises.
func (s *Store) checkSessionTTL(ttl time.Duration) error {
	if t := s.sessionTimeout(); ttl < t {
		return &kv.TTLError{TTL: ttl, Min: t, Reason: fmt.Sprintf(
			"KeepAlive keys and locks live as long as the ZooKeeper session, whose timeout is %v: use a TTL of at least that, or a shorter Config.SessionTimeout", t)}
	}
	return nil
}

// Put implements kv.Store. A Put without TTL makes a TTL or KeepAlive key
// permanent again; a Put that changes a key's kind replaces its znode
// (atomically with a multi, except to a TTL node: go-zookeeper's multi
// cannot create TTL nodes, so that is a delete then a create).
func (s *Store) Put(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	k, err := s.checkWrite("put", key, value, opts)
	if err != nil {
		return err
	}
	m := modeFor(opts)
	p, data := s.path(k), encodeFor(value, m)
	w := s.mutation()
	return s.callWrite(ctx, w, func() error { return w.put(p, data, m) })
}

func (s *mutation) put(p string, data []byte, m mode) error {
	if m.kind != kindPersistent {
		return s.putRead(p, data, m)
	}
	for range maxRaces {
		// The common case, a key that exists with the right kind, is one
		// round trip: SetData returns the stat that tells the kind.
		st, err := s.set(p, data, -1)
		switch {
		case err == nil:
			if !s.matches(st, nil, m) {
				_, err = s.replace(p, data, m, st)
				if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrNodeExists) {
					continue
				}
				if err != nil {
					return err
				}
			}
			s.record(p, data, m, false)
			return nil
		case errors.Is(err, zk.ErrNoNode):
			err = s.create(p, data, m)
			if errors.Is(err, zk.ErrNodeExists) {
				continue
			}
			if err == nil {
				s.record(p, data, m, false)
			}
			return err
		default:
			return err
		}
	}
	return fmt.Errorf("zookeeper: put %q: gave up after %d conflicting writers: %w", s.key(p), maxRaces, kv.ErrKeyModified)
}

// putRead is put for TTL and KeepAlive keys: it reads first, so that a
// znode that cannot take the kind asked for (one with keys below it
// cannot become ephemeral) is refused before anything is written, and
// because whether a znode already has this TTL is in its data.
func (s *mutation) putRead(p string, data []byte, m mode) error {
	if m.kind == kindEphemeral {
		// A KeepAlive key is mostly written once (a registration, a
		// leader record): the create goes first, one round trip; a key
		// that exists takes the read below.
		err := s.create(p, data, m)
		if err == nil {
			s.record(p, data, m, false)
			return nil
		}
		if !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
	}
	for range maxRaces {
		cur, st, err := s.conn.Get(p)
		switch {
		case errors.Is(err, zk.ErrNoNode):
			err = s.create(p, data, m)
		case err != nil:
			return err
		default:
			_, err = s.writeAt(p, data, cur, m, st)
		}
		if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrNodeExists) {
			continue
		}
		if err == nil {
			s.record(p, data, m, false)
		}
		return err
	}
	return fmt.Errorf("zookeeper: put %q: gave up after %d conflicting writers: %w", s.key(p), maxRaces, kv.ErrKeyModified)
}

// replace swaps the znode at p (at st.Version) for one of kind m and
// returns the new znode's stat, as the server answered the write.
func (s *mutation) replace(p string, data []byte, m mode, st *zk.Stat) (*zk.Stat, error) {
	if st.NumChildren > 0 {
		return nil, fmt.Errorf("zookeeper: %q has keys below it, so its znode cannot be replaced by a TTL or KeepAlive one: %w",
			s.key(p), kv.ErrCallNotSupported)
	}
	if m.kind == kindTTL {
		if err := s.del(p, st.Version); err != nil {
			return nil, err
		}
		if err := s.create(p, data, m); err != nil {
			return nil, err
		}
		// Not atomic here (a multi cannot create TTL znodes): the bump
		// follows the create.
		n := min(st.Version+1, maxVersionBump)
		var last *zk.Stat
		for v := range n {
			d := []byte(nil)
			if v == n-1 {
				d = data
			}
			var err error
			if last, err = s.set(p, d, v); err != nil {
				return nil, err
			}
		}
		return last, nil
	}
	res, err := s.multi(replaceOps(p, data, s.acl, flagsFor(m), st.Version)...)
	if err != nil {
		return nil, err
	}
	return res[len(res)-1].Stat, nil
}

// maxVersionBump bounds the SetData ops replaceOps adds (about 50 bytes
// each without data).
const maxVersionBump = 4096

// replaceOps deletes the znode p at version v and creates it again with
// version v+1. ZooKeeper can only compare versions, which restart at 0
// when a znode is re-created; a compare-and-swap that read the old znode
// at version v (or earlier) and sends its delete or set just after the
// replacement would otherwise hit the new znode: the ABA problem. The
// SetData ops run in the same multi, so the new znode's first visible
// state already has version v+1 (and Mzxid == Czxid, which is how the
// watchers tell it from a znode written twice). Beyond maxVersionBump the
// bump stops and that protection with it.
func replaceOps(p string, data []byte, acl []zk.ACL, flags int32, v int32) []any {
	n := min(v+1, maxVersionBump)
	ops := make([]any, 0, 2+n)
	ops = append(ops, &zk.DeleteRequest{Path: p, Version: v}, &zk.CreateRequest{Path: p, Data: data, Acl: acl, Flags: flags})
	for i := range n {
		d := []byte(nil)
		if i == n-1 {
			d = data
		}
		ops = append(ops, &zk.SetDataRequest{Path: p, Data: d, Version: i})
	}
	return ops
}

// record keeps the client's copy of this Store's KeepAlive keys, what
// sessionLoop re-creates after a session expiry. guarded: written by a
// GuardedPut (see ephemeral).
func (s *Store) record(p string, data []byte, m mode, guarded bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.kind == kindEphemeral {
		s.ephemerals[p] = ephemeral{data: data, guarded: guarded}
	} else {
		delete(s.ephemerals, p)
	}
}

func (s *Store) forget(p string) {
	s.mu.Lock()
	delete(s.ephemerals, p)
	s.mu.Unlock()
}

// takeEphemeral forgets p's KeepAlive record and returns it: done before
// the delete of the key is sent, so that a delete that applied but whose
// reply was lost is not undone by sessionLoop after a session expiry.
func (s *Store) takeEphemeral(p string) (ephemeral, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ephemerals[p]
	delete(s.ephemerals, p)
	return e, ok
}

// putBackEphemeral records e for p again after a delete that surely did
// not apply, unless a write since recorded p anew.
func (s *Store) putBackEphemeral(p string, e ephemeral) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ephemerals[p]; !ok {
		s.ephemerals[p] = e
	}
}

// notApplied reports whether a ZooKeeper error says the request surely
// did not change anything (refused by the server, or never sent).
func notApplied(err error) bool {
	return errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoServer) || errors.Is(err, zk.ErrNotEmpty) ||
		errors.Is(err, zk.ErrNoAuth) || errors.Is(err, errLockLost)
}

// multi runs ops and returns the first failing op's error.
func (s *mutation) multi(ops ...any) ([]zk.MultiResponse, error) {
	res, err := s.doMulti(ops...)
	if err == nil {
		return res, nil
	}
	// The failing op carries the real code; the others report a generic
	// rollback code.
	for _, r := range res {
		for _, known := range []error{zk.ErrNoNode, zk.ErrNodeExists, zk.ErrBadVersion, zk.ErrNotEmpty, zk.ErrNoAuth, zk.ErrNoChildrenForEphemerals} {
			if errors.Is(r.Error, known) {
				return res, r.Error
			}
		}
	}
	return res, err
}

// AtomicPut implements kv.Store. LastIndex is the znode's mzxid, unique
// store-wide, so a key deleted and re-created never matches an old pair.
func (s *Store) AtomicPut(ctx context.Context, key string, value []byte, previous *kv.KVPair, opts *kv.WriteOptions) (bool, *kv.KVPair, error) {
	k, err := s.checkWrite("atomic put", key, value, opts)
	if err != nil {
		return false, nil, err
	}
	m := modeFor(opts)
	p, data := s.path(k), encodeFor(value, m)
	var pair *kv.KVPair
	w := s.mutation()
	err = s.callWrite(ctx, w, func() error {
		var st *zk.Stat
		var err error
		if previous == nil {
			st, err = w.createOnly(p, data, m)
		} else {
			st, err = w.swap(p, data, m, previous.LastIndex)
		}
		if err == nil {
			s.record(p, data, m, false)
			pair = pairOf(k, append([]byte{}, value...), st)
		}
		return err
	})
	if err != nil {
		return false, nil, err
	}
	return true, pair, nil
}

// createOnly creates p, or takes it over if it is a directory, and returns
// the stat of the znode as written: from the server's answer to the write
// itself, never from a read after it, which a concurrent Delete or Put
// could make fail or misreport.
func (s *mutation) createOnly(p string, data []byte, m mode) (*zk.Stat, error) {
	for range maxRaces {
		st, err := s.createStat(p, data, m)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, zk.ErrNodeExists) {
			return nil, err
		}
		// A directory is not a key: take it over if it is still one.
		cur, st, err := s.conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if _, isKey := decode(cur); isKey {
			return nil, fmt.Errorf("zookeeper: %q: %w", s.key(p), kv.ErrKeyExists)
		}
		st, err = s.writeAt(p, data, cur, m, st)
		if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrNodeExists) {
			continue
		}
		return st, err
	}
	return nil, fmt.Errorf("zookeeper: create %q: %w", s.key(p), kv.ErrKeyModified)
}

// createStat is create that also returns the new znode's stat. Outside TTL
// nodes it is one multi: the create (with no data) and a SetData of the
// data at version 0, whose answer carries the stat; both ops share the
// multi's zxid, so Mzxid == Czxid as for a plain create. A TTL node cannot
// be created in a multi: its stat is the answer to the SetACL that marks
// it (see ttlMarker), and when that finds the node already deleted or
// replaced, the stat is the one of the create as far as it can be told:
// Czxid and Mzxid 0, which no later compare-and-swap can match, as none
// should, since the key has changed since.
func (s *mutation) createStat(p string, data []byte, m mode) (*zk.Stat, error) {
	if m.kind == kindTTL {
		st, err := s.createTTL(p, data, m)
		if err != nil {
			return nil, err
		}
		if st == nil {
			return &zk.Stat{}, nil
		}
		// Mzxid of our write is the znode's Czxid, whatever happened since.
		return &zk.Stat{Czxid: st.Czxid, Mzxid: st.Czxid, Ctime: st.Ctime, Mtime: st.Ctime,
			EphemeralOwner: st.EphemeralOwner, DataLength: int32(len(data)), Aversion: st.Aversion}, nil
	}
	for {
		res, err := s.multi(
			&zk.CreateRequest{Path: p, Data: nil, Acl: s.acl, Flags: flagsFor(m)},
			&zk.SetDataRequest{Path: p, Data: data, Version: 0})
		if err == nil {
			return res[1].Stat, nil
		}
		if !errors.Is(err, zk.ErrNoNode) {
			return nil, s.childErr(p, err)
		}
		if err := s.ensurePath(parent(p)); err != nil {
			return nil, err
		}
	}
}

// swap writes data at p if the key there is still at index last. Its
// answer comes from the server: the write names the version read, and a
// refusal of it is decided again from a fresh read (the key may have been
// deleted, not modified, since: a delete only clears the data, so it too
// changes the version), which is where the failed swap takes effect.
func (s *mutation) swap(p string, data []byte, m mode, last uint64) (*zk.Stat, error) {
	for range maxRaces {
		cur, st, err := s.getFresh(p, func(cur []byte, st *zk.Stat) bool { return isKeyAt(cur, st, last) })
		if errors.Is(err, zk.ErrNoNode) {
			return nil, fmt.Errorf("zookeeper: %q: %w", s.key(p), kv.ErrKeyNotFound)
		}
		if err != nil {
			return nil, err
		}
		if _, isKey := decode(cur); !isKey {
			return nil, fmt.Errorf("zookeeper: %q: %w", s.key(p), kv.ErrKeyNotFound)
		}
		if uint64(st.Mzxid) != last {
			return nil, fmt.Errorf("zookeeper: %q is at index %d, not %d: %w", s.key(p), st.Mzxid, last, kv.ErrKeyModified)
		}
		st, err = s.writeAt(p, data, cur, m, st)
		if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNodeExists) || errors.Is(err, zk.ErrNoNode) {
			continue // changed since the read: read again to tell how
		}
		return st, err
	}
	return nil, fmt.Errorf("zookeeper: %q: %w", s.key(p), kv.ErrKeyModified)
}

// writeAt writes data at p if it is still at st.Version, with kind m, and
// returns the new stat as the server answered the write.
func (s *mutation) writeAt(p string, data, cur []byte, m mode, st *zk.Stat) (*zk.Stat, error) {
	if s.matches(st, cur, m) {
		return s.set(p, data, st.Version)
	}
	return s.replace(p, data, m, st)
}

// Delete implements kv.Store. The key's znode becomes a directory (see
// removeAt); directories are left in place, even empty: a parent that
// never lost a child (Cversion == NumChildren) is what lets Events prove
// that nothing below it was deleted, and a missing prefix then means one
// that never held keys.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return fmt.Errorf("zookeeper: delete: %w", err)
	}
	p := s.path(k)
	w := s.mutation()
	return s.callWrite(ctx, w, func() error {
		for range maxRaces {
			cur, st, err := w.getFresh(p, isKey)
			if errors.Is(err, zk.ErrNoNode) {
				// Gone already (with an expired session, say): nor may
				// sessionLoop bring it back.
				s.forget(p)
				return fmt.Errorf("zookeeper: delete %q: %w", k, kv.ErrKeyNotFound)
			}
			if err != nil {
				return err
			}
			if _, isKey := decode(cur); !isKey {
				s.forget(p)
				return fmt.Errorf("zookeeper: delete %q: %w", k, kv.ErrKeyNotFound)
			}
			err = w.removeAt(p, st)
			if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNotEmpty) || errors.Is(err, zk.ErrNoNode) {
				continue
			}
			return err
		}
		return fmt.Errorf("zookeeper: delete %q: %w", k, kv.ErrKeyModified)
	})
}

// AtomicDelete implements kv.Store.
func (s *Store) AtomicDelete(ctx context.Context, key string, previous *kv.KVPair) (bool, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return false, fmt.Errorf("zookeeper: atomic delete: %w", err)
	}
	if previous == nil {
		return false, fmt.Errorf("zookeeper: atomic delete %q: %w", k, kv.ErrPreviousNotSpecified)
	}
	p := s.path(k)
	w := s.mutation()
	err = s.callWrite(ctx, w, func() error {
		for range maxRaces {
			cur, st, err := w.getFresh(p, func(cur []byte, st *zk.Stat) bool { return isKeyAt(cur, st, previous.LastIndex) })
			if errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("zookeeper: atomic delete %q: %w", k, kv.ErrKeyNotFound)
			}
			if err != nil {
				return err
			}
			if _, isKey := decode(cur); !isKey {
				return fmt.Errorf("zookeeper: atomic delete %q: %w", k, kv.ErrKeyNotFound)
			}
			if uint64(st.Mzxid) != previous.LastIndex {
				return fmt.Errorf("zookeeper: atomic delete %q: at index %d, not %d: %w", k, st.Mzxid, previous.LastIndex, kv.ErrKeyModified)
			}
			err = w.removeAt(p, st)
			if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
				continue // changed since the read: read again to tell how
			}
			return err
		}
		return fmt.Errorf("zookeeper: atomic delete %q: %w", k, kv.ErrKeyModified)
	})
	return err == nil, err
}

// getFresh reads p for a write that decides from what it finds. A write
// that goes ahead is checked by the server (it names the version read),
// but an answer given from the read alone (no such key, another version)
// must not come from a server that is behind the leader, as the one a
// client talks to may be: when the read is not what the caller can act
// on, getFresh has that server catch up (a read barrier) and reads again.
// The common case, a read that lets the write go ahead, costs no barrier.
func (s *mutation) getFresh(p string, actionable func(cur []byte, st *zk.Stat) bool) ([]byte, *zk.Stat, error) {
	cur, st, err := s.conn.Get(p)
	if err == nil && actionable(cur, st) {
		return cur, st, nil
	}
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return nil, nil, err
	}
	if err := s.readBarrier(); err != nil {
		return nil, nil, err
	}
	return s.conn.Get(p)
}

// isKey reports whether znode data holds a key (not a directory).
func isKey(cur []byte, _ *zk.Stat) bool {
	_, ok := decode(cur)
	return ok
}

// isKeyAt reports whether the znode holds a key at index last.
func isKeyAt(cur []byte, st *zk.Stat, last uint64) bool {
	return isKey(cur, st) && uint64(st.Mzxid) == last
}

// removeAt deletes the key at p, at st.Version, by clearing its data: the
// znode stays, as a directory, so that its version keeps growing across
// the key's deletes and re-creations. ZooKeeper compares versions only,
// and a znode created again starts its versions over: a compare-and-swap
// that read the key just before a delete and a create by others would
// otherwise find the new znode at the version it read, and overwrite a
// value it never saw (the checker of the chaos suite found exactly that).
// DeleteTree removes such directories.
//
// A KeepAlive key's znode is ephemeral and goes with the delete: a
// service's registrations, say, come and go under one directory, and a
// directory left per instance ever registered would grow for ever and be
// listed again by every watcher on each change. An ephemeral znode is
// removed by its session's end anyway, so the compare-and-swap guarantee
// above never covered it across a re-creation (see the package doc).
func (s *mutation) removeAt(p string, st *zk.Stat) error {
	if st.EphemeralOwner != 0 {
		e, had := s.takeEphemeral(p)
		err := s.del(p, st.Version)
		if err != nil && had && notApplied(err) {
			s.putBackEphemeral(p, e)
		}
		return err
	}
	_, err := s.set(p, nil, st.Version)
	if err == nil {
		s.forget(p)
	}
	return err
}

// DeleteTree implements kv.Store: every znode below the prefix goes, at
// any depth; the prefix's own key, if any, stays. Lock nodes live outside
// the user tree and are never touched.
func (s *Store) DeleteTree(ctx context.Context, prefix string) error {
	k, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return fmt.Errorf("zookeeper: delete tree: %w", err)
	}
	p := s.path(k)
	w := s.mutation()
	return s.callWrite(ctx, w, func() error {
		for range maxRaces {
			err := w.deleteBelow(ctx, p)
			if errors.Is(err, zk.ErrNotEmpty) {
				continue // a writer raced us; go again
			}
			return err
		}
		return fmt.Errorf("zookeeper: delete tree %q: writers keep adding keys: %w", k, kv.ErrKeyModified)
	})
}

func (s *mutation) deleteBelow(ctx context.Context, p string) error {
	children, _, err := s.conn.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, c := range children {
		if p == s.root && isReserved(c) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		cp := p + "/" + c
		if err := s.deleteBelow(ctx, cp); err != nil {
			return err
		}
		if err := s.del(cp, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		s.forget(cp)
	}
	return nil
}

// CheckWriteOptions implements kv.OptionsChecker.
func (s *Store) CheckWriteOptions(opts *kv.WriteOptions) error {
	if err := s.checkOptions(opts); err != nil {
		return fmt.Errorf("zookeeper: %w", err)
	}
	return nil
}

var _ kv.OptionsChecker = (*Store)(nil)
