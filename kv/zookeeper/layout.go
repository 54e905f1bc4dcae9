package zookeeper

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/kv"
)

// Data layout. A key "a/b/c" is the znode Root/a/b/c, and ZooKeeper needs
// Root/a and Root/a/b to exist first. Those intermediate znodes are created
// on demand and are not keys: List("a") must not return "a/b" just because
// "a/b/c" exists, yet "a/b" may also be a real key with an empty value.
// The two are told apart by the znode's data: a key's data is keyMarker
// followed by the value (so an empty value is one byte long), a
// directory's data is empty. Deleting a key that has keys below it clears
// its data, turning it back into a directory.
//
// Internal znodes live beside the user keys, under names that start with
// kv.ReservedSegmentPrefix, which no user key segment may use:
//
//	Root/__regent_locks/<key>/__regent_lock/<contender>   lock contenders
//	Root/__regent_rev                                     Revision's counter
const keyMarker = 0x01

const (
	locksDir = kv.ReservedSegmentPrefix + "_locks"
	lockLeaf = kv.ReservedSegmentPrefix + "_lock"
	revNode  = kv.ReservedSegmentPrefix + "_rev"
)

func encode(value []byte) []byte {
	d := make([]byte, 1+len(value))
	d[0] = keyMarker
	copy(d[1:], value)
	return d
}

// ttlMarker starts a TTL key's data: the marker, the TTL in milliseconds
// (8 bytes, big endian), then the value. ZooKeeper hides a TTL node's kind
// from clients (its stat says ephemeralOwner 0, as for a persistent node),
// so the data must say it. The znode's ACL version is bumped once after
// creation as well: Stat.Aversion > 0 marks a TTL node in the stat that
// every SetData returns, which keeps a plain Put one round trip.
const ttlMarker = 0x02

func encodeTTL(value []byte, ttl time.Duration) []byte {
	d := make([]byte, 9+len(value))
	d[0] = ttlMarker
	binary.BigEndian.PutUint64(d[1:9], uint64(ttl.Milliseconds()))
	copy(d[9:], value)
	return d
}

func encodeFor(value []byte, m mode) []byte {
	if m.kind == kindTTL {
		return encodeTTL(value, m.ttl)
	}
	return encode(value)
}

// decode returns the value of a key's data, or ok=false for a directory
// (or a znode regent did not write).
func decode(data []byte) (value []byte, ok bool) {
	switch {
	case len(data) >= 1 && data[0] == keyMarker:
		return append([]byte{}, data[1:]...), true
	case len(data) >= 9 && data[0] == ttlMarker:
		return append([]byte{}, data[9:]...), true
	}
	return nil, false
}

// ttlOf returns the TTL recorded in a key's data, or 0.
func ttlOf(data []byte) time.Duration {
	if len(data) >= 9 && data[0] == ttlMarker {
		return time.Duration(binary.BigEndian.Uint64(data[1:9])) * time.Millisecond
	}
	return 0
}

func isReserved(name string) bool { return strings.HasPrefix(name, kv.ReservedSegmentPrefix) }

// Znode kinds a key can have.
const (
	kindPersistent = iota
	kindTTL
	kindEphemeral
)

// mode is how a key's znode must be created.
type mode struct {
	kind int
	ttl  time.Duration
}

// MinTTL is the smallest TTL accepted: ZooKeeper counts TTLs in
// milliseconds. Expiry is in fact only as fine as the server's container
// check interval (znode.container.checkIntervalMs, 60 s by default).
const MinTTL = time.Millisecond

func modeFor(opts *kv.WriteOptions) mode {
	switch {
	case opts == nil || opts.TTL == 0:
		return mode{kind: kindPersistent}
	case opts.KeepAlive:
		return mode{kind: kindEphemeral}
	default:
		// Rounded up to a whole millisecond, ZooKeeper's unit.
		ttl := (opts.TTL + time.Millisecond - 1).Truncate(time.Millisecond)
		return mode{kind: kindTTL, ttl: ttl}
	}
}

// matches reports whether an existing znode (stat st, data cur if known)
// already has the kind m asks for, so that a plain SetData keeps it right.
func (s *Store) matches(st *zk.Stat, cur []byte, m mode) bool {
	o := st.EphemeralOwner
	switch m.kind {
	case kindPersistent:
		return o == 0 && st.Aversion == 0
	case kindTTL:
		return o == 0 && st.Aversion > 0 && ttlOf(cur) == m.ttl
	default:
		return o != 0 && o == s.conn.SessionID()
	}
}

func flagsFor(m mode) int32 {
	switch m.kind {
	case kindEphemeral:
		return zk.FlagEphemeral
	case kindTTL:
		return zk.FlagTTL
	}
	return zk.FlagPersistent
}

// create makes the znode p with data, creating missing parents as
// directories.
func (s *mutation) create(p string, data []byte, m mode) error {
	if m.kind == kindTTL {
		_, err := s.createTTL(p, data, m)
		return err
	}
	for {
		_, err := s.createNode(p, data, flagsFor(m))
		if !errors.Is(err, zk.ErrNoNode) {
			return s.childErr(p, err)
		}
		if err := s.ensurePath(parent(p)); err != nil {
			return err
		}
	}
}

// createTTL makes the TTL znode p and marks it (see ttlMarker). It returns
// the stat of the SetACL that marks it, or nil if the znode was already
// deleted or replaced by then: the create applied all the same.
func (s *mutation) createTTL(p string, data []byte, m mode) (*zk.Stat, error) {
	for {
		_, err := s.createTTLNode(p, data, m.ttl)
		if err == nil {
			// The mark; should it fail, the data still says TTL and the
			// next TTL-less Put reads it.
			st, err := s.setACL(p, 0)
			if errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrBadVersion) {
				return nil, nil // already reaped or replaced
			}
			return st, err
		}
		if !errors.Is(err, zk.ErrNoNode) {
			return nil, s.childErr(p, err)
		}
		if err := s.ensurePath(parent(p)); err != nil {
			return nil, err
		}
	}
}

// ensurePath creates p and its missing ancestors as directories.
func (s *Store) ensurePath(p string) error {
	if p == "" || p == "/" {
		return nil
	}
	for {
		var err error
		if strings.HasPrefix(p, s.root+"/"+locksDir+"/") {
			// Lock directories are containers: the server removes them once
			// their last contender is gone, so that one-off lock keys do not
			// pile up. A contender racing that removal re-creates them.
			_, err = s.conn.CreateContainer(p, nil, zk.FlagContainer, s.acl)
		} else {
			_, err = s.conn.Create(p, nil, zk.FlagPersistent, s.acl)
		}
		switch {
		case err == nil || errors.Is(err, zk.ErrNodeExists):
			return nil
		case errors.Is(err, zk.ErrNoNode):
			if err := s.ensurePath(parent(p)); err != nil {
				return err
			}
		case errors.Is(err, zk.ErrNoAuth):
			// The server checks the parent's create right before it looks
			// for p: an operator who made p for this identity under a
			// parent it may not write (the least-privilege layout) gets
			// NoAuth here. Exists needs no right.
			ok, _, xerr := s.conn.Exists(p)
			switch {
			case xerr != nil:
				return xerr // the connection's trouble, not a refusal
			case ok:
				return nil
			}
			return err
		default:
			return s.childErr(p, err)
		}
	}
}

// childErr explains ZooKeeper's refusal to put a znode below an ephemeral
// one: a KeepAlive key cannot have keys below it.
func (s *Store) childErr(p string, err error) error {
	if errors.Is(err, zk.ErrNoChildrenForEphemerals) {
		return fmt.Errorf("zookeeper: %q is below a KeepAlive key, and ZooKeeper's ephemeral znodes cannot have children: %w: %w",
			s.key(p), kv.ErrCallNotSupported, err)
	}
	return err
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func pairOf(key string, value []byte, st *zk.Stat) *kv.KVPair {
	return &kv.KVPair{Key: key, Value: value, LastIndex: uint64(st.Mzxid), Revision: uint64(st.Mzxid)}
}
