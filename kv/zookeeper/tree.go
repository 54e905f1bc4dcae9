package zookeeper

import (
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/kv"
)

// tree is a watched copy of a subtree (or of one key), kept current with
// one-shot data and child watches on every znode (data watches alone on
// ephemeral ones, which can have no children). A change costs O(1) round
// trips: a data change one GetW, a created key a ChildrenW of its parent
// plus a GetW and a ChildrenW of the new znode sent together (a GetW
// alone when its siblings' kind says ephemeral, see readNode), a deleted
// key a ChildrenW of its parent. (The child list itself is O(siblings) bytes;
// go-zookeeper v1.0.4 has no persistent recursive watches to avoid it.)
//
// Telling a change apart needs only the stats, so the tree keeps values
// only when its user needs the whole state again later (Watch, WatchTree:
// values set). Behind Snapshot and Events the values go straight into the
// changes and the caller (an informer) holds the only copy: mirroring
// 100,000 values would double the memory of every cache built on Events.
type tree struct {
	s      *Store
	in     *inbox
	nodes  map[string]*tnode
	values map[string][]byte // by znode path, keys only; nil when not kept
	rev    uint64            // highest zxid seen
	// lost is set when the stats show changes the watches could not
	// report one by one (a key written twice, or created and deleted,
	// between a notification and the read that follows it): they were
	// merged into the latest state. Events logs it.
	lost bool
}

type tnode struct {
	stat zstat
	// gone counts children dropped on their own NodeDeleted since the
	// last child read: Cversion changes they account for.
	gone  int32
	isKey bool
	// ephemeralKids: the last child read under this znode was ephemeral,
	// so the next new one is read as one (see readNode): a directory's
	// children tend to be of one kind, as a service's registrations are.
	// ephemeral: the znode is ephemeral (a KeepAlive key). Both bools
	// fit in the padding after isKey: tnode stays 56 bytes.
	ephemeralKids, ephemeral bool
	// children of the znode; nil for none (allocated on the first child,
	// as most znodes of a big tree are leaves) and for the single-key
	// watch, which arms no child watch.
	children map[string]struct{}
}

// zstat is the part of a zk.Stat the tree compares: 40 bytes per znode
// instead of 72.
type zstat struct {
	Czxid, Mzxid, Pzxid            int64
	Version, Cversion, NumChildren int32
}

// compactStat keeps the part of st the tree compares.
func compactStat(st *zk.Stat) zstat {
	return zstat{Czxid: st.Czxid, Mzxid: st.Mzxid, Pzxid: st.Pzxid,
		Version: st.Version, Cversion: st.Cversion, NumChildren: st.NumChildren}
}

// addChild records the child name c of n.
func (n *tnode) addChild(c string) {
	if n.children == nil {
		n.children = make(map[string]struct{})
	}
	n.children[c] = struct{}{}
}

// change is one key's new state (pair nil: deleted) at rev.
type change struct {
	key  string
	pair *kv.KVPair
	rev  uint64
	// since is the first revision at which the key may differ from its
	// state before this change: rev when the stats show this change was
	// the only one since the state the tree had (exact), lower when the
	// read may have merged earlier, unseen changes into this one. A
	// stream that holds this change back may claim revisions below since
	// only (see settle). 0: unknown.
	since uint64
	// gap marks no change of a key but changes the stats show and no read
	// saw (children created and deleted between two child lists): the
	// subtree's state in [since, rev) is unknown, so no batch may claim a
	// revision in it. key names the znode, so that settle keeps one gap
	// per znode apart from keys. Never sent.
	gap bool
}

// gapOf is the gap of znode p whose children changed unseen after from
// and before to.
func gapOf(p string, from, to int64) change {
	return change{key: gapKey(p), rev: uint64(to), since: uint64(from) + 1, gap: true}
}

// gapKey is the change key of a gap at znode p: no key starts with NUL.
func gapKey(p string) string { return "\x00" + p }

// errReconnected says the connection came back on the same session:
// go-zookeeper re-arms the watches, but only on a best-effort basis (a
// failed SetWatches is just logged), so the tree is read again and
// compared with the cache, as Curator's TreeCache does on RECONNECTED.
var errReconnected = errors.New("zookeeper: reconnected")

// errResync says the watches are gone (session expired): the tree must be
// read again from scratch, and whatever changed meanwhile is unknown.
var errResync = errors.New("zookeeper: watches lost with the session")

// newTree makes a tree of the znode base (only base with single); with
// values it keeps the value of every key, for pairs.
func (s *Store) newTree(base string, single, values bool) *tree {
	t := &tree{s: s, in: newInbox(base, single), nodes: make(map[string]*tnode)}
	if values {
		t.values = make(map[string][]byte)
	}
	s.subscribe(t.in)
	return t
}

func (t *tree) close() { t.s.unsubscribe(t.in) }

func (t *tree) base() string { return t.in.base }

// noteZxid raises the tree's revision to zxid z, one a read has seen.
func (t *tree) noteZxid(z int64) {
	if uint64(z) > t.rev {
		t.rev = uint64(z)
	}
}

// reportsAsKey reports whether the znode at p is reported as a key (the
// watched key itself for a single-key tree, every znode below the base
// otherwise).
func (t *tree) reportsAsKey(p string) bool {
	if t.in.single {
		return p == t.base()
	}
	return p != t.base()
}

// load reads the whole watched tree, arming watches, and returns it as
// puts. When the base znode is missing, an exists watch waits for it.
func (t *tree) load() ([]change, error) {
	t.nodes = make(map[string]*tnode)
	if t.values != nil {
		t.values = make(map[string][]byte)
	}
	for {
		chs, err := t.readSubtree(t.base(), false)
		if err != nil {
			return nil, err
		}
		if _, ok := t.nodes[t.base()]; ok {
			return chs, nil
		}
		ok, st, _, err := t.s.conn.ExistsW(t.base())
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nil
		}
		t.noteZxid(st.Mzxid) // created meanwhile: read it
	}
}

// readSubtree reads the znode p and below (just p for a single-key watch)
// into the cache and returns the keys found as puts.
func (t *tree) readSubtree(p string, ephemeral bool) ([]change, error) {
	var nodes []*walked
	if t.in.single {
		data, st, _, err := t.s.conn.GetW(p)
		if errors.Is(err, zk.ErrNoNode) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		n := &walked{path: p, stat: *st}
		n.value, n.isKey = decode(data)
		nodes = []*walked{n}
	} else {
		var err error
		nodes, err = t.s.walk(t.s.ctx, p, true, ephemeral)
		if err != nil {
			return nil, err
		}
	}
	out, err := t.vanishedInWalk(p, nodes)
	if err != nil {
		return nil, err
	}
	// One slab for the nodes: a big tree is read once and its nodes live
	// as long as it does.
	slab := make([]tnode, len(nodes))
	for i, n := range nodes {
		tn := &slab[i]
		tn.isKey, tn.stat, tn.ephemeral = n.isKey, compactStat(&n.stat), n.stat.EphemeralOwner != 0
		if !t.in.single && len(n.children) > 0 {
			tn.children = make(map[string]struct{}, len(n.children))
			for _, c := range n.children {
				if n.path == t.s.root && isReserved(c) {
					continue
				}
				tn.children[c] = struct{}{}
			}
		}
		t.nodes[n.path] = tn
		if t.values != nil && n.isKey {
			t.values[n.path] = n.value
		}
		t.noteZxid(n.stat.Mzxid)
		t.noteZxid(n.stat.Pzxid)
		if !t.in.single && n.stat.Cversion != n.stat.NumChildren {
			// Children of this new znode came and went before this first
			// read: what was below it in between is unknown.
			out = append(out, gapOf(n.path, n.stat.Czxid-1, n.stat.Pzxid))
		}
		if !n.isKey && n.stat.Version > 0 && t.reportsAsKey(n.path) {
			// A directory written since its creation was a key for a
			// while (Delete leaves the znode): put and deleted unseen.
			out = append(out, gapOf(n.path, n.stat.Czxid-1, n.stat.Mzxid))
		}
		if n.isKey && t.reportsAsKey(n.path) {
			// The key shares the path's bytes (a substring unless
			// escaped), which the node map keeps anyway.
			// Absent before its creation; exact when never written since.
			out = append(out, change{key: t.s.key(n.path), pair: pairOf(t.s.key(n.path), n.value, &n.stat),
				rev: uint64(n.stat.Mzxid), since: uint64(n.stat.Czxid)})
		}
	}
	return out, nil
}

// vanishedInWalk returns a gap for every znode a walk of p listed (or was
// asked to read: p itself) but found deleted when it came to read it: it
// existed, unread, for a while nobody knows, so its parent's subtree is
// unknown from the last batch until the delete. The delete's zxid is at
// most its parent's pzxid, read now.
func (t *tree) vanishedInWalk(p string, nodes []*walked) ([]change, error) {
	if t.in.single {
		return nil, nil
	}
	read := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		read[n.path] = true
	}
	var gone []string
	if !read[p] && p != t.base() {
		gone = append(gone, p)
	}
	for _, n := range nodes {
		for _, c := range n.children {
			if n.path == t.s.root && isReserved(c) {
				continue
			}
			if q := n.path + "/" + c; !read[q] {
				gone = append(gone, q)
			}
		}
	}
	var out []change
	for _, q := range gone {
		ok, st, err := t.s.conn.Exists(parent(q))
		if err != nil {
			return nil, err
		}
		rev := t.rev
		if ok {
			rev = max(rev, uint64(st.Pzxid))
		}
		// since 0: unknown, from the last batch on.
		out = append(out, change{key: gapKey(q), rev: rev, gap: true})
	}
	return out, nil
}

// drop removes p and everything cached below it, returning deletes at rev.
// It walks down from p through the child names, so that a delete costs
// what lies below it, not a pass over the whole cache (a 100,000-key tree
// scanned every node on each delete).
func (t *tree) drop(p string, rev uint64) []change {
	var out []change
	for stack := []string{p}; len(stack) > 0; {
		q := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n, ok := t.nodes[q]
		if !ok {
			continue // listed but never read: nothing cached
		}
		for c := range n.children {
			stack = append(stack, q+"/"+c)
		}
		delete(t.nodes, q)
		delete(t.values, q)
		if n.isKey && t.reportsAsKey(q) {
			// Unseen writes may have come before the delete.
			out = append(out, change{key: t.s.key(q), rev: rev, since: uint64(n.stat.Mzxid) + 1})
		}
	}
	if par, ok := t.nodes[parent(p)]; ok {
		delete(par.children, p[strings.LastIndexByte(p, '/')+1:])
	}
	return out
}

// handle applies one connection event to the cache.
func (t *tree) handle(ev zk.Event) ([]change, error) {
	switch ev.Type {
	case zk.EventSession:
		switch ev.State {
		case zk.StateExpired:
			return nil, errResync
		case zk.StateHasSession:
			return nil, errReconnected
		}
		return nil, nil
	case zk.EventNotWatching:
		return nil, errResync
	case zk.EventNodeCreated:
		if ev.Path != t.base() {
			return nil, nil
		}
		if _, ok := t.nodes[ev.Path]; ok {
			return nil, nil
		}
		return t.load()
	case zk.EventNodeDeleted, zk.EventNodeDataChanged:
		return t.refresh(ev.Path)
	case zk.EventNodeChildrenChanged:
		n, ok := t.nodes[ev.Path]
		if !ok || t.in.single {
			return nil, nil
		}
		children, st, _, err := t.s.conn.ChildrenW(ev.Path)
		if errors.Is(err, zk.ErrNoNode) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		t.noteZxid(st.Pzxid)
		now := make(map[string]struct{}, len(children))
		var out []change
		var added []string
		for _, c := range children {
			if ev.Path == t.s.root && isReserved(c) {
				continue
			}
			now[c] = struct{}{}
			// Uncached also when listed before but gone by the time it
			// was read: it may be back, unread and unwatched.
			if _, cached := t.nodes[ev.Path+"/"+c]; !cached {
				added = append(added, c)
			}
		}
		accounted := n.gone + int32(len(added))
		for c := range n.children {
			if _, still := now[c]; !still {
				accounted++
				out = append(out, t.drop(ev.Path+"/"+c, uint64(st.Pzxid))...)
			}
		}
		if ev.Path == t.s.root {
			// Reserved children (locks, the revision counter) change
			// the root's Cversion too; no accounting there.
			accounted = st.Cversion - n.stat.Cversion
		}
		if st.Cversion-n.stat.Cversion != accounted {
			t.lost = true // children created and deleted unseen
			out = append(out, gapOf(ev.Path, n.stat.Pzxid, st.Pzxid))
		}
		n.gone, n.stat.Cversion, n.stat.Pzxid = 0, st.Cversion, st.Pzxid
		for _, c := range added {
			n.addChild(c)
			more, err := t.readSubtree(ev.Path+"/"+c, n.ephemeralKids)
			if err != nil {
				return out, err
			}
			if nd := t.nodes[ev.Path+"/"+c]; nd != nil {
				n.ephemeralKids = nd.ephemeral
			}
			for _, ch := range more {
				// A new key already rewritten: its first values are lost.
				if ch.gap {
					continue
				}
				if nd := t.nodes[t.s.path(ch.key)]; nd != nil && nd.stat.Mzxid != nd.stat.Czxid {
					t.lost = true
				}
			}
			out = append(out, more...)
		}
		return out, nil
	}
	return nil, nil
}

// refresh re-reads the cached znode p after a watch on it fired and
// reports how it differs from the cache. Level-triggered on purpose: the
// notification only says "look again", and what is read (with its stats)
// decides, so a late or repeated notification is harmless and a change
// made before the watch was re-armed is still seen.
func (t *tree) refresh(p string) ([]change, error) {
	old, ok := t.nodes[p]
	if !ok {
		return nil, nil
	}
	data, st, _, err := t.s.conn.GetW(p)
	if errors.Is(err, zk.ErrNoNode) {
		// No watch is armed on a missing znode: report the delete now.
		return t.vanished(p)
	}
	if err != nil {
		return nil, err
	}
	if st.Czxid != old.stat.Czxid {
		return t.recreated(p, st.Czxid)
	}
	if st.Mzxid == old.stat.Mzxid {
		return nil, nil // already seen
	}
	since := uint64(st.Mzxid) // one write since the cached state: exact
	if st.Version != old.stat.Version+1 {
		t.lost = true
		since = uint64(old.stat.Mzxid) + 1
	}
	t.noteZxid(st.Mzxid)
	v, isKey := decode(data)
	wasKey := old.isKey
	old.isKey = isKey
	if t.values != nil {
		if isKey {
			t.values[p] = v
		} else {
			delete(t.values, p)
		}
	}
	// The child fields are kept: they follow the child watch's reads.
	old.stat.Mzxid, old.stat.Version = st.Mzxid, st.Version
	if !t.reportsAsKey(p) {
		return nil, nil
	}
	switch {
	case isKey:
		return []change{{key: t.s.key(p), pair: pairOf(t.s.key(p), v, st), rev: uint64(st.Mzxid), since: since}}, nil
	case wasKey:
		return []change{{key: t.s.key(p), rev: uint64(st.Mzxid), since: since}}, nil
	case since < uint64(st.Mzxid):
		// Not a key before nor now, but written more than once since: it
		// may have been one in between (put, then deleted).
		return []change{{key: gapKey(p), rev: uint64(st.Mzxid), since: since, gap: true}}, nil
	}
	return nil, nil
}

// vanished drops the cached znode p, found missing.
func (t *tree) vanished(p string) ([]change, error) {
	// The delete's zxid is at most the pzxid of the nearest ancestor
	// still there (DeleteTree removes parents after it).
	var rev int64
	for a := parent(p); ; a = parent(a) {
		ok, st, err := t.s.conn.Exists(a)
		if err != nil {
			return nil, err
		}
		if ok || a == "/" {
			rev = st.Pzxid
			break
		}
	}
	// That pzxid may already count a re-creation of p, whose put would
	// then sort before this delete: look again once the bound is taken.
	ok, st, err := t.s.conn.Exists(p)
	if err != nil {
		return nil, err
	}
	if ok {
		return t.recreated(p, st.Czxid)
	}
	t.noteZxid(rev)
	if par, ok := t.nodes[parent(p)]; ok {
		par.gone++
	}
	out := t.drop(p, uint64(rev))
	if p != t.base() {
		// A later re-creation shows up in the parent's child list.
		return out, nil
	}
	more, err := t.load()
	return append(out, more...), err
}

// recreated replaces the cached znode p, deleted and created again (as
// czxid) since it was read: the old keys go at czxid, an upper bound of
// their delete that sorts before the new znode's puts.
func (t *tree) recreated(p string, czxid int64) ([]change, error) {
	t.lost = true // whatever happened in between is merged
	out := t.drop(p, uint64(czxid))
	if p == t.base() {
		more, err := t.load()
		return append(out, more...), err
	}
	if par, ok := t.nodes[parent(p)]; ok && !t.in.single {
		par.addChild(p[strings.LastIndexByte(p, '/')+1:])
	}
	more, err := t.readSubtree(p, false)
	return append(out, more...), err
}

// pairs returns the cached keys, sorted; only for a tree keeping values.
func (t *tree) pairs() []*kv.KVPair {
	out := make([]*kv.KVPair, 0, len(t.values))
	for p, v := range t.values {
		if n := t.nodes[p]; n != nil && t.reportsAsKey(p) {
			out = append(out, &kv.KVPair{Key: t.s.key(p), Value: append([]byte{}, v...),
				LastIndex: uint64(n.stat.Mzxid), Revision: uint64(n.stat.Mzxid)})
		}
	}
	sortPairs(out)
	return out
}

// sortPairs sorts pairs by key.
func sortPairs(ps []*kv.KVPair) {
	slices.SortFunc(ps, func(a, b *kv.KVPair) int { return strings.Compare(a.Key, b.Key) })
}

// pairsOf returns the pairs of puts (load's result), sorted by key.
func pairsOf(chs []change) []*kv.KVPair {
	out := make([]*kv.KVPair, 0, len(chs))
	for _, c := range chs {
		if c.pair != nil {
			out = append(out, c.pair)
		}
	}
	sortPairs(out)
	return out
}

// applyQueued handles every queued event, retrying reads that fail while the
// connection is down (go-zookeeper re-arms the armed watches itself on
// reconnect, so nothing is missed as long as the session lives). The
// changes come in handling order, a key possibly more than once: see
// latestPerKey and settle.
func (t *tree) applyQueued() ([]change, error) {
	var out []change
	for _, ev := range t.in.take() {
		var chs []change
		err := retry(t.s.ctx, func() error {
			var err error
			chs, err = t.handle(ev)
			if errors.Is(err, errReconnected) {
				chs, err = t.reconcile()
			}
			switch {
			case err == nil:
				return nil
			case errors.Is(err, zk.ErrSessionExpired):
				return permanent(errResync)
			case isConnErr(err):
				return err
			}
			return permanent(err)
		})
		out = append(out, chs...)
		if err != nil {
			return out, err
		}
	}
	// Every revision came in a reply: noting them keeps t.rev the highest
	// zxid seen, which the stream's catch-up claim relies on.
	for _, c := range out {
		t.noteZxid(int64(c.rev))
	}
	return out, nil
}

// latestPerKey keeps, of changes in handling order, each key's last one
// and sorts them by revision. Each handler reads the current state, so a
// key's last change in handling order is its latest state; its revision
// need not be the highest of the key's (a delete carries an upper bound,
// its parent's pzxid), and keeping only that one per key makes sorting
// by revision safe.
func latestPerKey(chs []change) []change {
	last := make(map[string]int, len(chs))
	for i, c := range chs {
		last[c.key] = i
	}
	kept := make([]change, 0, len(last))
	for i, c := range chs {
		if last[c.key] == i {
			kept = append(kept, c)
		}
	}
	sortByRevision(kept)
	return kept
}

// sortByRevision sorts changes by revision; on a tie with a create, the
// delete came first.
func sortByRevision(chs []change) {
	sort.SliceStable(chs, func(i, j int) bool {
		if chs[i].rev != chs[j].rev {
			return chs[i].rev < chs[j].rev
		}
		return chs[i].pair == nil && chs[j].pair != nil
	})
}

// reconcile reads the tree again (re-arming every watch) and reports the
// difference with the cache. Where the stats show more changes than the
// difference explains, lost is set.
func (t *tree) reconcile() ([]change, error) {
	old, oldValues := t.nodes, t.values
	loaded, err := t.load()
	if err != nil {
		t.nodes, t.values = old, oldValues
		return nil, err
	}
	read := make(map[string]*kv.KVPair, len(loaded))
	var out []change
	for _, c := range loaded {
		if c.gap {
			out = append(out, c) // spans the new read could not date
			continue
		}
		read[c.key] = c.pair
	}
	for p, n := range t.nodes {
		o, had := old[p]
		counts := t.reportsAsKey(p)
		if had && o.stat.Czxid != n.stat.Czxid {
			t.lost = true // deleted and re-created unseen
		}
		if had && !t.in.single {
			diff := int32(0)
			for c := range n.children {
				if _, ok := o.children[c]; !ok {
					diff++
				}
			}
			for c := range o.children {
				if _, ok := n.children[c]; !ok {
					diff++
				}
			}
			if p != t.s.root && n.stat.Cversion-o.stat.Cversion != diff {
				t.lost = true
				out = append(out, gapOf(p, o.stat.Pzxid, n.stat.Pzxid))
			}
		}
		// Exact when the stats show one write since the cached state.
		since := uint64(n.stat.Czxid)
		switch {
		case had && o.stat.Czxid != n.stat.Czxid:
			since = uint64(o.stat.Mzxid) + 1
		case had && n.stat.Version == o.stat.Version+1:
			since = uint64(n.stat.Mzxid)
		case had:
			since = uint64(o.stat.Mzxid) + 1
		}
		switch {
		case !counts:
		case n.isKey && (!had || o.stat.Mzxid != n.stat.Mzxid):
			if (had && n.stat.Version != o.stat.Version+1) || (!had && n.stat.Mzxid != n.stat.Czxid) {
				t.lost = true
			}
			out = append(out, change{key: t.s.key(p), pair: read[t.s.key(p)], rev: uint64(n.stat.Mzxid), since: since})
		case !n.isKey && had && o.isKey:
			out = append(out, change{key: t.s.key(p), rev: uint64(n.stat.Mzxid), since: since})
		case !n.isKey && since < uint64(n.stat.Mzxid):
			// Not a key before nor now, but written unseen: it may have
			// been one in between.
			out = append(out, change{key: gapKey(p), rev: uint64(n.stat.Mzxid), since: since, gap: true})
		}
	}
	for p, o := range old {
		if _, ok := t.nodes[p]; ok || !o.isKey || !t.reportsAsKey(p) {
			continue
		}
		// The delete's zxid is at most the pzxid of the nearest ancestor
		// still there (as in vanished); t.rev when the base is gone too.
		rev := t.rev
		for a := parent(p); ; a = parent(a) {
			if anc, ok := t.nodes[a]; ok {
				rev = uint64(anc.stat.Pzxid)
				break
			}
			if a == t.base() || a == "/" {
				break
			}
		}
		out = append(out, change{key: t.s.key(p), rev: rev, since: uint64(o.stat.Mzxid) + 1})
	}
	return out, nil
}

// reload reads the tree again after its watches were lost, waiting for a
// new session.
func (t *tree) reload() error {
	t.in.take() // stale: the reload sees their effects
	return retry(t.s.ctx, func() error {
		_, err := t.load()
		if err != nil && (isConnErr(err) || errors.Is(err, zk.ErrSessionExpired)) {
			return err
		}
		if err != nil {
			return permanent(err)
		}
		return nil
	})
}
