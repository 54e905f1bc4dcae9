package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/kv"
)

// Get implements kv.Store. With Consistent, a read barrier first (a write
// through the quorum, shared by concurrent callers; see readBarrier) makes
// the read linearizable: ZooKeeper reads are otherwise served by the
// connected server, possibly behind, and its sync does not suffice.
func (s *Store) Get(ctx context.Context, key string, opts *kv.ReadOptions) (*kv.KVPair, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: get: %w", err)
	}
	p := s.path(k)
	var pair *kv.KVPair
	err = s.call(ctx, func() error {
		sid := s.conn.SessionID()
		if opts != nil && opts.Consistent {
			if err := s.readBarrier(); err != nil {
				return err
			}
		}
		data, st, err := s.conn.Get(p)
		if err == nil && opts != nil && opts.Consistent {
			err = s.sameSession(sid)
		}
		if err != nil {
			return err
		}
		v, ok := decode(data)
		if !ok {
			return fmt.Errorf("zookeeper: get %q: %w", k, kv.ErrKeyNotFound)
		}
		pair = pairOf(k, v, st)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pair, nil
}

// Exists implements kv.Store; a directory is not a key.
func (s *Store) Exists(ctx context.Context, key string, opts *kv.ReadOptions) (bool, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return false, fmt.Errorf("zookeeper: exists: %w", err)
	}
	p := s.path(k)
	var found bool
	err = s.call(ctx, func() error {
		sid := s.conn.SessionID()
		if opts != nil && opts.Consistent {
			if err := s.readBarrier(); err != nil {
				return err
			}
		}
		ok, st, err := s.conn.Exists(p)
		if err == nil && opts != nil && opts.Consistent {
			err = s.sameSession(sid)
		}
		// A key's data holds at least the marker byte.
		found = ok && err == nil && st.DataLength > 0
		return err
	})
	return found, err
}

// List implements kv.Store. ZooKeeper has no range read, so List walks the
// subtree level by level, pipelining the reads of a level over the one
// connection; it is not a snapshot at one zxid (see Snapshot for that).
func (s *Store) List(ctx context.Context, prefix string, opts *kv.ReadOptions) ([]*kv.KVPair, error) {
	k, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: list: %w", err)
	}
	var pairs []*kv.KVPair
	err = s.call(ctx, func() error {
		p := s.path(k)
		sid := s.conn.SessionID()
		if opts != nil && opts.Consistent {
			if err := s.readBarrier(); err != nil {
				return err
			}
		}
		nodes, err := s.walk(ctx, p, false, false)
		if err == nil && opts != nil && opts.Consistent {
			err = s.sameSession(sid)
		}
		if err != nil {
			return err
		}
		pairs = make([]*kv.KVPair, 0, len(nodes))
		for _, n := range nodes {
			if n.isKey && n.path != p {
				pairs = append(pairs, pairOf(s.key(n.path), n.value, &n.stat))
			}
		}
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].Key < pairs[j].Key })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pairs, nil
}

// walked is one znode read by walk.
type walked struct {
	path     string
	value    []byte
	ttl      time.Duration // of a TTL key (ttlOf)
	isKey    bool
	stat     zk.Stat
	children []string // nil unless listed
}

// pipeline is how many reads walk keeps in flight: enough to fill the
// connection, few enough not to queue behind one another.
const pipeline = 64

// walk reads the znode at root and everything below it, skipping reserved
// names. With watch, every read leaves a data or child watch behind (the
// tree watcher's view). A missing root yields nothing. rootEphemeral says
// the root is probably an ephemeral znode (see readNode).
func (s *Store) walk(ctx context.Context, root string, watch, rootEphemeral bool) ([]*walked, error) {
	var out []*walked
	level := []string{root}
	for len(level) > 0 {
		nodes := make([]*walked, len(level))
		errs := make([]error, len(level))
		s.parallel(len(level), func(i int) {
			nodes[i], errs[i] = s.readNode(level[i], watch, rootEphemeral && level[i] == root)
		})
		var next []string
		for i, n := range nodes {
			if errs[i] != nil {
				if errors.Is(errs[i], zk.ErrNoNode) {
					continue // deleted under us: the parent's watch reports it
				}
				return nil, errs[i]
			}
			out = append(out, n)
			for _, c := range n.children {
				if n.path == s.root && isReserved(c) {
					continue
				}
				next = append(next, n.path+"/"+c)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		level = next
	}
	return out, nil
}

// readNode reads a znode's data and, when it has children (or is watched,
// so that future children are seen), its child list. Watched, the two
// reads go out together: a new znode costs one round trip, not two.
// Unless it is probably ephemeral (the caller's guess): then the data read
// goes alone, as an ephemeral znode can have no children and needs no
// child list nor child watch; a wrong guess costs the child list's round
// trip after it.
func (s *Store) readNode(p string, watch, ephemeral bool) (*walked, error) {
	n := &walked{path: p}
	if watch && ephemeral {
		data, st, _, err := s.conn.GetW(p)
		if err != nil {
			return nil, err
		}
		if st.EphemeralOwner != 0 {
			n.stat = *st
			n.value, n.isKey = decode(data)
			n.ttl = ttlOf(data)
			n.children = []string{}
			return n, nil
		}
		// A persistent znode after all: read it as one, both watches
		// (the data watch armed again here still fires once).
	}
	if watch {
		var data []byte
		var st, cst *zk.Stat
		for {
			var err, cerr error
			listed := make(chan struct{})
			go func() {
				defer close(listed)
				n.children, cst, _, cerr = s.conn.ChildrenW(p)
			}()
			data, st, _, err = s.conn.GetW(p)
			<-listed
			if err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
			if st.Czxid == cst.Czxid {
				break
			}
			// Deleted and created again between the two reads: they saw
			// two znodes. Read the new one again, both watches on it.
		}
		n.stat = *st
		n.value, n.isKey = decode(data)
		n.ttl = ttlOf(data)
		// The child fields come with the child list and its watch: the
		// count to follow from.
		n.stat.Cversion, n.stat.Pzxid, n.stat.NumChildren = cst.Cversion, cst.Pzxid, cst.NumChildren
	} else {
		data, st, err := s.conn.Get(p)
		if err != nil {
			return nil, err
		}
		n.stat = *st
		n.value, n.isKey = decode(data)
		n.ttl = ttlOf(data)
		if st.NumChildren == 0 {
			return n, nil
		}
		if n.children, _, err = s.conn.Children(p); err != nil {
			return nil, err
		}
	}
	if n.children == nil {
		n.children = []string{}
	}
	return n, nil
}

// parallel runs fn(0..n-1) with at most pipeline calls in flight.
func (s *Store) parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, pipeline)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}
