package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Revisions are zxids: ZooKeeper's store-wide transaction ids, which order
// every change. ZooKeeper keeps no history of changes, only current state,
// so the stream starts from a tree watch rather than from a log: see
// Snapshot and Events.

// progressInterval is how long an idle stream waits before a progress batch.
const progressInterval = time.Second

// parkFor is how long a Snapshot's watched tree waits for Events to claim
// it, and maxParked how many may wait at once (the oldest goes first).
const (
	parkFor   = 30 * time.Second
	maxParked = 16
)

// Revision implements kv.Streamer. A zxid is only visible in the stat of a
// znode a change touched, so Revision writes a reserved counter znode and
// returns its mzxid: one write, but a revision that is exactly "now", at
// least every write completed before the call.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	var rev uint64
	err := s.call(ctx, func() error {
		var err error
		rev, err = s.revision()
		return err
	})
	return rev, err
}

func (s *Store) revision() (uint64, error) {
	p := s.root + "/" + revNode
	for {
		st, err := s.conn.Set(p, nil, -1)
		if errors.Is(err, zk.ErrNoNode) {
			if _, err := s.conn.Create(p, nil, zk.FlagPersistent, s.acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		return uint64(st.Mzxid), nil
	}
}

// Snapshot implements kv.Streamer. ZooKeeper cannot read a subtree at one
// zxid, so Snapshot takes the revision R first, then reads the tree while
// arming watches on it: every change after R is either in the pairs or
// fires a watch. That watched tree is kept (for parkFor) so that
// Events(prefix, R) continues exactly where the snapshot ended. Pairs may
// already include changes after R, never miss one before it.
func (s *Store) Snapshot(ctx context.Context, prefix string) (kv.Snapshot, error) {
	k, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return kv.Snapshot{}, fmt.Errorf("zookeeper: snapshot: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return kv.Snapshot{}, err
	}
	t := s.newTree(s.path(k), false, false)
	var rev uint64
	var loaded []change
	err = s.call(ctx, func() error {
		var err error
		if rev, err = s.revision(); err != nil {
			return err
		}
		loaded, err = t.load()
		return err
	})
	if err != nil {
		t.close()
		return kv.Snapshot{}, err
	}
	t.rev = rev
	snap := kv.Snapshot{Pairs: pairsOf(loaded), Revision: rev}
	s.parked.put(s, k, rev, t)
	return snap, nil
}

// Events implements kv.Streamer. From the revision of a Snapshot of the
// same prefix on this Store (within parkFor) it continues that snapshot's
// watches. From any other revision it replays what the znode stats prove
// (see replaySince) or reports ErrCompacted at once, and the caller
// re-lists with Snapshot: ZooKeeper keeps no history.
//
// Watch notifications carry no data, so a key written twice (or written
// and deleted) within the round trip that re-arms its watch is delivered
// once, in its latest state, as kv.Streamer allows for stores without
// history; the final state of every key is always delivered. What the
// stream cannot vouch for ends it: after a session expiry (changes made
// while the watches were gone are unknown) it sends ErrCompacted.
func (s *Store) Events(ctx context.Context, prefix string, after uint64) (<-chan kv.EventBatch, error) {
	k, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: events: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	var gap error
	var replay []change
	t := s.parked.take(k, after)
	if t == nil {
		t = s.newTree(s.path(k), false, false)
		err := s.callUnbounded(ctx, func() error { // a stream's start lasts as its ctx lets it
			loaded, err := t.load()
			if err != nil {
				return err
			}
			replay, gap = t.replaySince(loaded, after, s.parked.floor())
			if gap != nil && !errors.As(gap, new(*kv.CompactedError)) {
				return gap
			}
			return nil
		})
		if err != nil {
			t.close()
			return nil, err
		}
		t.rev = max(t.rev, after)
	}
	ch := make(chan kv.EventBatch)
	if !s.goroutines.Go(func() { s.stream(ctx, t, after, replay, gap, ch) }) {
		t.close()
		return nil, fmt.Errorf("zookeeper: events: %w", kv.ErrClosed)
	}
	return ch, nil
}

// replaySince works out, from the loaded tree's stats alone, the changes
// after `after` that a stream starting there must replay. ZooKeeper keeps
// no history, but a stat tells enough when the subtree only grew: a znode
// created after `after` and never modified (Version 0) is one put at its
// czxid, and a parent whose Cversion equals its NumChildren never lost a
// child, so nothing was deleted. Anything else (a key modified, a child
// deleted, the prefix itself gone) cannot be replayed: ErrCompacted.
func (t *tree) replaySince(loaded []change, after, floor uint64) ([]change, error) {
	gap := func(newest int64) error {
		return &kv.CompactedError{Requested: after, Compacted: max(after, uint64(newest)-1)}
	}
	if after < floor {
		return nil, &kv.CompactedError{Requested: after, Compacted: floor}
	}
	if _, ok := t.nodes[t.base()]; !ok {
		// Missing prefix: it had no keys at `after` unless the nearest
		// ancestor that exists lost children since.
		for a := parent(t.base()); ; a = parent(a) {
			ok, st, err := t.s.conn.Exists(a)
			if err != nil {
				return nil, err
			}
			if ok || a == "/" {
				if uint64(st.Pzxid) > after && st.Cversion != st.NumChildren {
					return nil, gap(st.Pzxid)
				}
				return nil, nil
			}
		}
	}
	read := make(map[string]*kv.KVPair, len(loaded))
	for _, c := range loaded {
		read[c.key] = c.pair
	}
	var out []change
	for p, n := range t.nodes {
		st := &n.stat
		if uint64(st.Pzxid) > after && st.Cversion != st.NumChildren {
			return nil, gap(st.Pzxid)
		}
		switch {
		case uint64(st.Czxid) > after:
			if st.Mzxid != st.Czxid { // written again after its creation
				return nil, gap(st.Mzxid)
			}
			if n.isKey && t.reportsAsKey(p) {
				out = append(out, change{key: t.s.key(p), pair: read[t.s.key(p)], rev: uint64(st.Mzxid), since: uint64(st.Mzxid)})
			}
		case uint64(st.Mzxid) > after && p != t.base():
			return nil, gap(st.Mzxid)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rev < out[j].rev })
	return out, nil
}

func (s *Store) stream(ctx context.Context, t *tree, pos uint64, replay []change, gap error, ch chan<- kv.EventBatch) {
	defer close(ch)
	defer t.close()
	end := func(err error) {
		driver.SendLast(ctx, ch, kv.EventBatch{Revision: pos, Err: err})
	}
	if gap != nil {
		end(fmt.Errorf("zookeeper: events: %w", gap))
		return
	}
	send := func(b kv.EventBatch) bool {
		return deliver(ctx, s.done, ch, b, func() kv.EventBatch {
			return kv.EventBatch{Revision: pos, Err: fmt.Errorf("zookeeper: events: %w", kv.ErrClosed)}
		})
	}
	idle := time.NewTimer(progressInterval)
	defer idle.Stop()
	// held are changes read past what the stream has caught up to: sent
	// with the step that catches up (the next one, see settle). The replay
	// starts there, so that the first step runs at once and sends it.
	st := &settler{held: replay}
	for {
		progress := false
		if len(st.held) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				end(fmt.Errorf("zookeeper: events: %w", kv.ErrClosed))
				return
			case <-t.in.wake:
			case <-idle.C:
				// Every watch event of a change before the counter write
				// has reached the inbox by the time the write returns
				// (the server sends notifications in zxid order on this
				// connection and the callback queues them synchronously),
				// so after handling the inbox the stream has caught up to
				// rev.
				rev, err := s.revision()
				if err != nil && !isConnErr(err) {
					end(fmt.Errorf("zookeeper: events: %w", s.mapErr(err)))
					return
				}
				if err == nil {
					progress = true
					t.noteZxid(int64(rev))
				}
			}
		}
		// The reads of a step see zxids whose notifications (for other
		// znodes) may arrive during the step: t.rev is only caught up to
		// once nothing waits in the inbox. Before the step, it was (every
		// notification of a change up to a zxid precedes the reply that
		// showed it, and the step took them all).
		claim := t.rev
		chs, err := t.applyQueued()
		if !t.in.pending() {
			claim = t.rev
		}
		if err != nil {
			// The claim covers notifications taken but not handled: no
			// batch may claim it. What was handled goes with the end.
			st.held = nil
		}
		var ready []change
		ready, claim = st.step(chs, claim, pos)
		if err == nil && (len(ready) > 0 || progress) {
			if !send(batchOf(ready, &pos, claim)) {
				return
			}
		}
		if errors.Is(err, errResync) {
			end(fmt.Errorf("zookeeper: events: session expired, changes may be lost: %w",
				&kv.CompactedError{Requested: pos, Compacted: pos}))
			return
		}
		if t.lost {
			// Allowed by the contract for stores without history: the
			// latest state of every key has been delivered.
			t.lost = false
			s.log.Debug("zookeeper: events: changes merged (faster than one-shot watches re-arm)", zap.String("prefix", t.base()))
		}
		if err != nil {
			end(fmt.Errorf("zookeeper: events: %w", s.mapErr(err)))
			return
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(progressInterval)
	}
}

// settle splits changes, in handling order, into those a batch can carry,
// sorted by revision, and those it must hold for a later step, in handling
// order, and returns the revision the batch may claim: at most claim (the
// revision the stream has caught up to), at least pos (the last batch's).
//
// A change past claim cannot be sent yet: a notification still queued may
// be of a change to another key below its revision, and that change would
// then arrive after the batch that claimed it (a read of one key can see a
// zxid before the stream has handled everything up to it). A held change
// also bounds the claim: the batch leaves its key as the reader last saw
// it, which is the key's state only below the change's since (a read that
// merged unseen writes into one change does not know when they were).
// So the claim is lowered below the since of every held change, holding
// what is then past it, until it settles. Each key sends
// its latest state at or below the claim, so that a key written faster
// than the stream catches up still gets its earlier states out. Everything
// held was seen by the step that held it, so the next step's claim covers
// it.
//
// Under writes that never pause, faster than the stream's reads, every read
// may merge and the lowering can fall back to pos step after step: the
// stream would hold everything for ever. So a stream whose claim stalled
// for maxStalledSteps steps in a row calls settle with strict false once:
// it claims what it has caught up to without lowering, merging the
// undatable writes into the later changes it sends, as kv.Streamer allows
// for stores without history.
func settle(chs []change, claim, pos uint64, strict bool) (ready, held []change, claimed uint64) {
	claimed = max(claim, pos)
	for lowered := strict; lowered; {
		lowered = false
		// Every held change counts, not only each key's first: gaps of
		// one znode need not come in order of since.
		for _, c := range chs {
			if c.rev <= claimed {
				continue
			}
			// The previous batch (at pos) had every key right, so a key
			// differs no earlier than pos+1 whatever its since says.
			if since := max(c.since, pos+1); claimed >= since {
				claimed, lowered = since-1, true
			}
		}
	}
	// Per key: its latest change at or below the claim before its first
	// held one is sent; that held change and all after it are held.
	caught := make(map[string]int, len(chs))
	heldFrom := map[string]bool{}
	for i, c := range chs {
		if heldFrom[c.key] || c.rev > claimed {
			heldFrom[c.key] = true
			continue
		}
		caught[c.key] = i
	}
	clear(heldFrom)
	for i, c := range chs {
		switch {
		case heldFrom[c.key] || c.rev > claimed:
			heldFrom[c.key] = true
			held = append(held, c)
		case !c.gap:
			if j, ok := caught[c.key]; ok && j == i {
				ready = append(ready, c)
			}
		}
	}
	sortByRevision(ready)
	return ready, held, claimed
}

// settler carries what settle holds from one step of a stream to the next,
// and how many steps in a row it could claim nothing new.
type settler struct {
	held    []change
	stalled int
}

// step settles the changes of one step (after those held) against claim,
// the revision the stream has caught up to, and pos, the last batch's: it
// returns the changes to send and the revision to claim.
func (st *settler) step(chs []change, claim, pos uint64) ([]change, uint64) {
	ready, held, claimed := settle(append(st.held, chs...), claim, pos, st.stalled < maxStalledSteps)
	st.held = held
	if claimed == pos && claim > pos && len(held) > 0 {
		st.stalled++
	} else {
		st.stalled = 0
	}
	return ready, claimed
}

// maxStalledSteps is how many steps in a row a stream lets settle hold
// everything back (see settle) before it claims its caught-up revision
// anyway.
const maxStalledSteps = 4

// batchOf makes the batch of chs, caught up to claim, and at least to
// its own changes as the contract wants.
func batchOf(chs []change, pos *uint64, claim uint64) kv.EventBatch {
	b := kv.EventBatch{Events: make([]kv.Event, 0, len(chs))}
	for _, c := range chs {
		if c.pair != nil {
			b.Events = append(b.Events, kv.Event{Type: kv.EventPut, Pair: c.pair})
		} else {
			b.Events = append(b.Events, kv.Event{Type: kv.EventDelete, Pair: &kv.KVPair{Key: c.key, Revision: c.rev}})
		}
		*pos = max(*pos, c.rev)
	}
	*pos = max(*pos, claim)
	b.Revision = *pos
	return b
}

// compact makes the Store forget its client-side history up to and
// including rev: parked Snapshot watches at or below rev are dropped, and
// Events from a revision below rev report ErrCompacted. ZooKeeper itself
// keeps no history to compact; the conformance suite's Harness.Compact
// calls it (through export_test.go).
func (s *Store) compact(rev uint64) {
	s.parked.compact(rev)
}

// parking holds Snapshot trees until Events claims them or they expire.
type parking struct {
	mu     sync.Mutex
	trees  map[*tree]parked
	minRev uint64 // Compact's floor
}

type parked struct {
	prefix string
	rev    uint64
	at     time.Time
	timer  *time.Timer
}

func (pk *parking) put(s *Store, prefix string, rev uint64, t *tree) {
	pk.mu.Lock()
	if pk.trees == nil {
		pk.trees = make(map[*tree]parked)
	}
	var oldest *tree
	if len(pk.trees) >= maxParked {
		for ot, p := range pk.trees {
			if oldest == nil || p.at.Before(pk.trees[oldest].at) {
				oldest = ot
			}
		}
		pk.trees[oldest].timer.Stop()
		delete(pk.trees, oldest)
	}
	pk.trees[t] = parked{prefix: prefix, rev: rev, at: time.Now(), timer: time.AfterFunc(parkFor, func() {
		if pk.remove(t) {
			t.close()
		}
	})}
	pk.mu.Unlock()
	if oldest != nil {
		oldest.close()
	}
}

func (pk *parking) remove(t *tree) bool {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	p, ok := pk.trees[t]
	if ok {
		p.timer.Stop()
		delete(pk.trees, t)
	}
	return ok
}

func (pk *parking) take(prefix string, rev uint64) *tree {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if rev < pk.minRev {
		return nil
	}
	for t, p := range pk.trees {
		if p.prefix == prefix && p.rev == rev {
			p.timer.Stop()
			delete(pk.trees, t)
			return t
		}
	}
	return nil
}

func (pk *parking) floor() uint64 {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	return pk.minRev
}

func (pk *parking) compact(rev uint64) {
	pk.mu.Lock()
	pk.minRev = max(pk.minRev, rev)
	var drop []*tree
	for t, p := range pk.trees {
		if p.rev <= rev {
			p.timer.Stop()
			delete(pk.trees, t)
			drop = append(drop, t)
		}
	}
	pk.mu.Unlock()
	for _, t := range drop {
		t.close()
	}
}

// closeAll drops every parked tree (Close).
func (pk *parking) closeAll() { pk.compact(^uint64(0)) }
