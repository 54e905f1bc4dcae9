package zookeeper

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// NewLock implements kv.Store. The lock is ZooKeeper's classic recipe:
// each contender creates a protected ephemeral-sequential znode under
// Root/__regent_locks/<key>/__regent_lock (the GUID in its name finds it
// again when the create's reply was lost), the lowest sequence holds the
// lock, and every other contender watches only the one just before it, so
// a release wakes one waiter, not the herd.
//
// The fencing token is the holder's znode czxid, which grows with every
// new contender. Guarded writes are a multi whose first op checks that
// znode's version: the server rejects them once the znode is gone.
//
// The lock lives as long as the session: its TTL (default: the session
// timeout the server granted) must be at least that timeout, or a dead
// holder would keep it longer than the TTL says (*kv.TTLError otherwise).
// RenewDeadline must be below the TTL; it defaults to two thirds of the
// session timeout and is shortened to leave max(T/4, 200ms) before the
// earliest moment the server may expire the session (see lostMargin).
//
// The holder confirms its znode with the leader every third of that
// deadline (a read barrier through the quorum, then an Exists; see
// readBarrier; go-zookeeper's pings keep the session itself alive), and
// the lost channel closes when the znode is deleted, when the session
// expires, or when no confirmation has come back for
// RenewDeadline, counted from the send time of the last one answered: the
// server cannot expire the session sooner than a session timeout after
// it received that request. A connection that drops and comes back within
// the deadline, to the same server or another member, keeps the lock.
// When the hold ends for any reason but the session's end, the contender
// znode is deleted (in the background, for as long as the session lives),
// so that a lost hold never blocks the next contender, this Locker
// included; after a hold that ran out unconfirmed, only lostMargin after
// the lost channel closed, so that the lock passes on no sooner than the
// holder was promised.
func (s *Store) NewLock(ctx context.Context, key string, opts *kv.LockOptions) (kv.Locker, error) {
	k, lk, err := driver.NewLockArgs(ctx, key, opts, driver.LockPolicy{
		DefaultTTL: s.sessionTimeout(),
		CheckTTL:   s.checkSessionTTL,
		Margin:     lostMargin,
	}, s.check())
	if err != nil {
		return nil, fmt.Errorf("zookeeper: new lock: %w", err)
	}
	return &locker{
		s:     s,
		key:   k,
		dir:   s.root + "/" + locksDir + "/" + escapeKey(k) + "/" + lockLeaf,
		value: lk.Value,
		lk:    lk,
		sem:   make(chan struct{}, 1),
	}, nil
}

type locker struct {
	s     *Store
	key   string
	dir   string // parent znode of the contenders
	value []byte
	lk    driver.Lock // the options resolved; its Deadline follows the granted session timeout

	sem chan struct{} // one Lock or TryLock at a time

	mu   sync.Mutex
	hold *hold // nil when not held
	// cleanup, when set, ends once the contender znodes this Locker left
	// (a previous hold, an abandoned attempt) are gone; the next attempt
	// waits for it, so that it never queues behind its own leftover.
	cleanup <-chan struct{}
	guid    string // of the current attempt's contender (see enqueue)
}

// hold is one tenure of the lock.
type hold struct {
	node  string // the contender znode
	owner int64  // the session that owns it
	token uint64 // its czxid

	lost     chan struct{}
	lostOnce sync.Once
	stop     chan struct{} // closed to end the monitor
	stopOnce sync.Once
	exited   chan struct{} // closed when the monitor has returned
}

func (h *hold) end() { h.stopOnce.Do(func() { close(h.stop) }) }

// lostMargin is how long before the earliest server-side expiry of the
// session the holder has declared the lock lost at the latest, whatever
// RenewDeadline asks: a quarter of the session timeout, at least 200 ms.
// Beyond the clock-rate differences and the time the holder needs to act
// (a tenth on etcd and Consul), it covers the delay with which a follower
// passes its clients' session touches on to the leader, which expires
// sessions: up to half a tick, and the server's minimum session timeout
// is two ticks (minSessionTimeout defaults to 2 x tickTime), so half a
// tick is at most a quarter of any session timeout it grants.
func lostMargin(t time.Duration) time.Duration { return max(t/4, 200*time.Millisecond) }

// window is how long after the send time of its last confirmed check the
// holder still believes it holds the lock, for the session timeout t the
// server granted (which a new session may change).
func (l *locker) window(t time.Duration) time.Duration { return l.lk.Deadline(t) }

// interval is how often the holder confirms its znode: three times per
// window, so that one slow answer does not cost the lock.
func (l *locker) interval(t time.Duration) time.Duration { return max(l.window(t)/3, time.Millisecond) }

// confirmRetry is how soon a failed confirmation is tried again.
const confirmRetry = 200 * time.Millisecond

const contenderName = "c"

func seqOf(name string) string {
	if i := strings.LastIndex(name, contenderName); i >= 0 {
		return name[i+len(contenderName):]
	}
	return name
}

// Lock implements kv.Locker.
func (l *locker) Lock(ctx context.Context) (<-chan struct{}, error) { return l.lock(ctx, true) }

// TryLock implements kv.Locker.
func (l *locker) TryLock(ctx context.Context) (<-chan struct{}, error) {
	ctx, done := kv.BoundRequest(ctx, l.s.cfg.RequestTimeout) // one attempt: bounded, unlike Lock
	defer done()
	return l.lock(ctx, false)
}

func (l *locker) lock(ctx context.Context, wait bool) (<-chan struct{}, error) {
	s := l.s
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	select {
	case l.sem <- struct{}{}:
		defer func() { <-l.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	held, cleanup := l.hold != nil, l.cleanup
	l.mu.Unlock()
	if held {
		return nil, fmt.Errorf("zookeeper: lock %q: already held by this locker: %w", l.key, kv.ErrLockHeld)
	}
	if cleanup != nil {
		select {
		case <-cleanup:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrClosed)
		}
	}
	node, err := l.enqueue(ctx)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: lock %q: %w", l.key, err)
	}
	h, err := l.acquire(ctx, node, wait)
	if err != nil {
		return nil, err
	}
	return h.lost, nil
}

// acquire waits until node is the first contender (re-queueing if a session
// expiry takes it), then confirms it and starts the hold's monitor. On
// failure it removes whatever contender it left.
func (l *locker) acquire(ctx context.Context, node string, wait bool) (*hold, error) {
	s := l.s
	// The contender's own watch and stat are read while it waits, so that
	// taking the lock costs no round trip after the listing that shows it
	// first (see ownWatch).
	own := l.watchOwn(node)
	giveUp := func(err error) (*hold, error) {
		// After that read has answered: a delete sent before it would
		// leave its watch on a path never created again, for as long as
		// the session lives (one per failed TryLock).
		l.track(l.removeAfter(node, 0, own.done))
		return nil, err
	}
	// A waiter rides out connection trouble (and a session expiry, by
	// queueing again) until ctx ends.
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(time.Second), backoff.WithMaxElapsedTime(0))
	var listed time.Time
	for {
		first, at, err := l.waitTurn(ctx, node, wait)
		switch {
		case errors.Is(err, errRequeue):
			// The session expired while waiting and took the contender
			// with it: queue again, at the back, on the new session.
			s.log.Warn("zookeeper: lock contender lost with the session; queueing again", zapKey(l.key))
			if node, err = l.enqueue(ctx); err != nil {
				return nil, fmt.Errorf("zookeeper: lock %q: %w", l.key, err)
			}
			own = l.watchOwn(node)
			continue
		case transient(err) && !wait:
			return giveUp(err) // TryLock makes one attempt
		case transient(err):
			if err := pause(ctx, s.done, bo); err != nil {
				return giveUp(err)
			}
			continue
		case err != nil:
			return giveUp(err)
		case !first:
			bo.Reset()
			continue
		}
		listed = at
		break
	}
	// The hold needs the znode's owner session and token, and the watch
	// that reports its deletion. Read while waiting, they are taken as
	// they are, with the renew window starting at the send time of the
	// listing that showed the znode first (it proved the znode there);
	// else (that read failed, or its watch has fired) they are read now.
	sent, st, w := listed, (*zk.Stat)(nil), (<-chan zk.Event)(nil)
	// Sent before the listing (on one connection ZooKeeper answers in
	// order), it has almost always answered; when not, its answer is as
	// quick as a new read's.
	select {
	case <-own.done:
	case <-ctx.Done():
		return giveUp(fmt.Errorf("zookeeper: lock %q: %w", l.key, ctx.Err()))
	case <-s.done:
		return giveUp(fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrClosed))
	}
	if r, _ := own.ready(); r.err == nil && r.ok && !r.fired() {
		st, w = r.st, r.ch
	} else {
		sent = time.Now()
		err := s.call(ctx, func() error {
			ok, stat, ch, err := s.conn.ExistsW(node)
			if err == nil && !ok {
				err = fmt.Errorf("contender znode gone as the lock was taken (session expired?): %w", kv.ErrLockLost)
			}
			st, w = stat, ch
			return err
		})
		if err != nil {
			return giveUp(fmt.Errorf("zookeeper: lock %q: %w", l.key, err))
		}
	}
	h := &hold{node: node, owner: st.EphemeralOwner, token: uint64(st.Czxid),
		lost: make(chan struct{}), stop: make(chan struct{}), exited: make(chan struct{})}
	l.mu.Lock()
	l.hold = h
	l.mu.Unlock()
	if !s.goroutines.Go(func() { l.monitor(h, sent, w) }) {
		close(h.exited)
		l.lose(h, "store closed", false)
		return nil, fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrClosed)
	}
	return h, nil
}

// errRequeue: the contender znode is gone (its session expired).
var errRequeue = errors.New("zookeeper: contender gone")

// waitTurn returns true once node is the lowest contender, false when the
// one ahead of it has gone (the caller looks again), ErrLockHeld without
// wait if it is not first, errRequeue if node itself is gone.
func (l *locker) waitTurn(ctx context.Context, node string, wait bool) (bool, time.Time, error) {
	return l.turn(ctx, node, wait, false)
}

// waitTurnSynced is TryLock's second look, after a read barrier.
func (l *locker) waitTurnSynced(ctx context.Context, node string) (bool, time.Time, error) {
	return l.turn(ctx, node, false, true)
}

// turn also returns the send time of the listing that decided: when node
// is first, the znode was there then.
func (l *locker) turn(ctx context.Context, node string, wait, synced bool) (bool, time.Time, error) {
	s := l.s
	var children []string
	sent := time.Now()
	err := s.call(ctx, func() error {
		if synced {
			if err := s.readBarrier(); err != nil {
				return err
			}
		}
		var err error
		children, _, err = s.conn.Children(l.dir)
		return err
	})
	if err != nil {
		return false, sent, err
	}
	mine := node[strings.LastIndexByte(node, '/')+1:]
	l.mu.Lock()
	guid := l.guid
	l.mu.Unlock()
	children = slices.DeleteFunc(children, func(c string) bool {
		// A second znode of this attempt (a create retried after its
		// reply was lost, that applied after all) must not stay ahead of
		// the others or behind this one: remove it.
		if c != mine && guid != "" && strings.Contains(c, guid) {
			l.track(l.remove(l.dir+"/"+c, 0))
			return true
		}
		return false
	})
	sort.Slice(children, func(i, j int) bool { return seqOf(children[i]) < seqOf(children[j]) })
	idx := slices.Index(children, mine)
	switch {
	case idx < 0:
		return false, sent, errRequeue
	case idx == 0:
		return true, sent, nil
	case !wait:
		// A listing from a server behind the leader may still show a
		// holder that is gone: look again after a read barrier before
		// answering that it is held.
		if !synced {
			return l.waitTurnSynced(ctx, node)
		}
		return false, sent, fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrLockHeld)
	}
	var ok bool
	var w <-chan zk.Event
	err = s.call(ctx, func() error {
		var err error
		ok, _, w, err = s.conn.ExistsW(l.dir + "/" + children[idx-1])
		return err
	})
	if err != nil || !ok {
		return false, sent, err
	}
	select {
	case <-w:
		return false, sent, nil
	case <-ctx.Done():
		return false, sent, ctx.Err()
	case <-s.done:
		return false, sent, fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrClosed)
	}
}

// ownWatch is the ExistsW of a contender's own znode, sent as it starts
// waiting: its stat (owner session, Czxid: the token) and the watch that
// reports the znode's deletion.
type ownWatch struct {
	done chan struct{} // closed once the read has answered
	res  ownRead
}

type ownRead struct {
	ok  bool
	st  *zk.Stat
	ch  <-chan zk.Event
	err error
}

// fired reports whether the watch has fired already (the znode changed or
// went while waiting): the hold then reads its own.
func (r ownRead) fired() bool {
	select {
	case <-r.ch:
		return true
	default:
		return false
	}
}

// watchOwn sends the ExistsW of node in the background.
func (l *locker) watchOwn(node string) *ownWatch {
	w := &ownWatch{done: make(chan struct{})}
	if !l.s.goroutines.Go(func() {
		defer close(w.done)
		w.res.ok, w.res.st, w.res.ch, w.res.err = l.s.conn.ExistsW(node)
	}) {
		w.res.err = kv.ErrClosed
		close(w.done)
	}
	return w
}

// ready returns the read's answer if it has come.
func (w *ownWatch) ready() (ownRead, bool) {
	select {
	case <-w.done:
		return w.res, true
	default:
		return ownRead{}, false
	}
}

// transient tells errors a waiting Lock retries: the connection or the
// session is being re-established.
func transient(err error) bool {
	return errors.Is(err, kv.ErrNotReachable) || isConnErr(err)
}

// pause waits for the next backoff interval, ctx or Close.
func pause(ctx context.Context, done <-chan struct{}, bo backoff.BackOff) error {
	t := time.NewTimer(bo.NextBackOff())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return fmt.Errorf("zookeeper: lock: %w", kv.ErrClosed)
	}
}

// enqueue creates this locker's contender znode. It is a protected
// ephemeral-sequential znode, as Curator makes them: its name carries a
// GUID of this attempt, so that when the create's reply is lost (the
// connection broke, ctx ended) the znode can be found again, or found
// never to have been made, rather than left to block every contender for
// as long as its session lives. go-zookeeper's own protected create gives
// up (leaving a possible znode behind) when its search fails.
func (l *locker) enqueue(ctx context.Context) (string, error) {
	s := l.s
	guid := newGUID()
	l.mu.Lock()
	l.guid = guid
	l.mu.Unlock()
	type result struct {
		node string
		err  error
	}
	res := make(chan result, 1)
	var mu sync.Mutex
	abandoned := false
	if !s.goroutines.Go(func() {
		n, err := l.createContender(guid)
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if n != "" {
				l.track(l.remove(n, 0))
			}
			return
		}
		res <- result{n, err}
	}) {
		return "", fmt.Errorf("zookeeper: %w", kv.ErrClosed)
	}
	select {
	case r := <-res:
		return r.node, s.mapErr(r.err)
	case <-ctx.Done():
		mu.Lock()
		abandoned = true
		select {
		case r := <-res:
			if r.node != "" {
				l.track(l.remove(r.node, 0))
			}
		default:
		}
		mu.Unlock()
		return "", ctx.Err()
	case <-s.done:
		return "", fmt.Errorf("zookeeper: %w", kv.ErrClosed)
	}
}

// createContender creates the contender znode for guid and returns its
// path. A create whose outcome is unknown is settled by looking for guid
// among the contenders (after a read barrier, so that the server is not
// behind);
// a create that cannot have applied (never sent, or its session gone) is
// made again. It gives up only when the Store closes.
func (l *locker) createContender(guid string) (string, error) {
	s := l.s
	name := l.dir + "/" + protectedPrefix + guid + "-" + contenderName
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(time.Second), backoff.WithMaxElapsedTime(0))
	for {
		if s.closed() {
			return "", kv.ErrClosed
		}
		owner := s.conn.SessionID()
		n, err := s.conn.Create(name, l.value, zk.FlagEphemeral|zk.FlagSequence, s.acl)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, zk.ErrNoNode):
			if err := s.ensurePath(l.dir); err != nil && !transient(err) {
				return "", err
			}
			continue
		case errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrSessionMoved):
			// Sent, no answer: it may exist. Find it, or learn it does not.
			n, err := l.findContender(guid, owner)
			if err == nil && n != "" {
				return n, nil
			}
			if errors.Is(err, kv.ErrClosed) {
				return "", err
			}
		case errors.Is(err, zk.ErrNoServer) || errors.Is(err, zk.ErrSessionExpired):
			// Not sent, or its session is gone with whatever it made.
		default:
			return "", err
		}
		if err := pause(s.ctx, s.done, bo); err != nil {
			return "", kv.ErrClosed
		}
	}
}

// findContender looks for the contender znode of guid, created by session
// owner. It returns "" when there is none: the session has ended (and any
// znode of it with it), or a listing after a read barrier does not show it.
func (l *locker) findContender(guid string, owner int64) (string, error) {
	s := l.s
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(time.Second), backoff.WithMaxElapsedTime(0))
	for {
		if s.closed() {
			return "", kv.ErrClosed
		}
		if s.conn.SessionID() != owner {
			return "", nil
		}
		err := s.readBarrier()
		var children []string
		if err == nil || errors.Is(err, zk.ErrNoNode) {
			children, _, err = s.conn.Children(l.dir)
		}
		switch {
		case errors.Is(err, zk.ErrNoNode):
			return "", nil
		case err == nil:
			for _, c := range children {
				if strings.Contains(c, guid) {
					return l.dir + "/" + c, nil
				}
			}
			return "", nil
		case !transient(err):
			return "", err
		}
		if err := pause(s.ctx, s.done, bo); err != nil {
			return "", kv.ErrClosed
		}
	}
}

// protectedPrefix starts the names of protected znodes (Curator's and
// go-zookeeper's convention), followed by the GUID and a dash.
const protectedPrefix = "_c_"

func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// track makes the next Lock or TryLock of this Locker wait until the
// removal done ends, as well as those already pending.
func (l *locker) track(done <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.cleanup
	if prev == nil {
		l.cleanup = done
		return
	}
	both := make(chan struct{})
	if !l.s.goroutines.Go(func() {
		defer close(both)
		<-prev
		<-done
	}) {
		close(both) // closing: the session ends, and the znodes with it
	}
	l.cleanup = both
}

// monitor follows a hold until it ends: it confirms the znode every
// interval and declares the lock lost when the znode is deleted, when the
// session that owns it ends, or when no confirmation has been answered for
// the renew window, counted from the send time of the last one that was.
func (l *locker) monitor(h *hold, confirmed time.Time, deleted <-chan zk.Event) {
	defer close(h.exited)
	s := l.s
	type answer struct {
		sent time.Time
		ok   bool
		st   *zk.Stat
		err  error
	}
	var inFlight chan answer // nil while no check is in flight
	next := time.NewTimer(l.interval(s.sessionTimeout()))
	defer next.Stop()
	for {
		t := s.sessionTimeout()
		left := time.Until(confirmed.Add(l.window(t)))
		if left <= 0 {
			l.lose(h, fmt.Sprintf("not confirmed by the server within %v", l.window(t)), true)
			return
		}
		if sid := s.conn.SessionID(); sid != h.owner {
			l.lose(h, "session expired", false)
			return
		}
		s.mu.Lock()
		changed := s.stateChanged
		s.mu.Unlock()
		deadline := time.NewTimer(left)
		select {
		case <-h.stop:
			deadline.Stop()
			return
		case <-s.done:
			deadline.Stop()
			l.lose(h, "store closed", false) // Close ends the session, and the znode with it
			return
		case ev := <-deleted:
			deadline.Stop()
			switch ev.Type {
			case zk.EventNodeDeleted:
				l.lose(h, "lock znode deleted", false)
				return
			case zk.EventNotWatching:
				l.lose(h, "session lost", false)
				return
			}
			deleted = nil // another event on our znode: the checks carry on
		case <-changed:
		case <-deadline.C:
		case <-next.C:
			if inFlight == nil {
				inFlight = make(chan answer, 1)
				res := inFlight
				if !s.goroutines.Go(func() {
					// Through the quorum: a read barrier first, so that a
					// member cut off from the leader, which may go on
					// answering reads for a while, cannot confirm a session
					// the leader is expiring.
					sent := time.Now()
					err := s.readBarrier()
					var ok bool
					var st *zk.Stat
					if err == nil || errors.Is(err, zk.ErrNoNode) {
						ok, st, err = s.conn.Exists(h.node)
					}
					res <- answer{sent, ok, st, err}
				}) {
					inFlight = nil
				}
			}
		case a := <-inFlight:
			inFlight = nil
			switch {
			case a.err == nil && a.ok && a.st.EphemeralOwner == h.owner:
				confirmed = a.sent
				next.Reset(l.interval(t))
			case a.err == nil:
				l.lose(h, "lock znode deleted", false)
				return
			case errors.Is(a.err, zk.ErrSessionExpired):
				l.lose(h, "session expired", false)
				return
			default:
				next.Reset(min(confirmRetry, max(left, time.Millisecond)))
			}
		}
		deadline.Stop()
	}
}

// lose ends h as lost: the Locker no longer holds it (Token 0, guarded
// writes refused) by the time the lost channel closes. With cleanup, the
// contender znode is removed as long as its session lives, but only
// lostMargin after the lost channel has closed: removing it passes the
// lock on, and the holder must have had the margin the design promises to
// stop acting on it first, as it would if its session had expired.
func (l *locker) lose(h *hold, why string, cleanup bool) {
	h.lostOnce.Do(func() {
		l.mu.Lock()
		if l.hold == h {
			l.hold = nil
		}
		l.mu.Unlock()
		if why != "store closed" {
			l.s.log.Warn("zookeeper: lock lost", zapKey(l.key), zapWhy(why))
		}
		close(h.lost)
		if cleanup {
			l.track(l.remove(h.node, lostMargin(l.s.sessionTimeout())))
		}
	})
}

// remove deletes a contender znode in the background, after delay,
// retrying through connection trouble for as long as the Store is open:
// the znode blocks every other contender until it is gone or its session
// ends. The channel closes once it is gone (or the session that owned it,
// or the Store).
func (l *locker) remove(node string, delay time.Duration) <-chan struct{} {
	return l.removeAfter(node, delay, nil)
}

// removeAfter is remove that first waits for after to close, if not nil.
func (l *locker) removeAfter(node string, delay time.Duration, after <-chan struct{}) <-chan struct{} {
	s := l.s
	done := make(chan struct{})
	owner := s.conn.SessionID()
	op := func() error {
		if s.closed() {
			return permanent(kv.ErrClosed)
		}
		err := s.conn.Delete(node, -1)
		switch {
		case err == nil || errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrSessionExpired):
			return nil
		case s.conn.SessionID() != owner:
			return nil // a new session: the old one's znodes are gone
		case isConnErr(err):
			return err
		}
		return permanent(err)
	}
	if !s.goroutines.Go(func() {
		defer close(done)
		if after != nil {
			select {
			case <-after:
			case <-s.done:
				return // closing: the session ends, and the znode with it
			}
		}
		if delay > 0 {
			wait := time.NewTimer(delay)
			defer wait.Stop()
			select {
			case <-wait.C:
			case <-s.done:
				return // closing: the session ends, and the znode with it
			}
		}
		if err := retry(s.ctx, op); err != nil && !errors.Is(err, kv.ErrClosed) && s.ctx.Err() == nil {
			s.log.Error("zookeeper: could not remove a lock contender; it stays until the session ends",
				zapKey(l.key), zapWhy(err.Error()))
		}
	}) {
		close(done) // closing: the session ends, and the znode with it
	}
	return done
}

// Unlock implements kv.Locker. The hold ends here whatever happens next:
// Token drops to 0 and the lost channel closes before the znode's delete
// is sent. The delete runs in the background, not bounded by ctx, so a
// caller whose ctx has ended still frees the lock at once. Unlock waits for
// it until ctx ends, or for one session timeout at most: a client that
// cannot reach any server for that long has lost its session, and with it
// the znode.
func (l *locker) Unlock(ctx context.Context) error {
	l.mu.Lock()
	h := l.hold
	l.hold = nil
	l.mu.Unlock()
	if h == nil {
		return nil
	}
	h.end()
	<-h.exited
	h.lostOnce.Do(func() { close(h.lost) })
	gone := l.remove(h.node, 0)
	l.track(gone)
	bound := time.NewTimer(l.s.sessionTimeout())
	defer bound.Stop()
	select {
	case <-gone:
		return nil
	case <-ctx.Done():
		select {
		case <-gone:
			return nil
		default:
		}
		return fmt.Errorf("zookeeper: unlock %q: %w (the release goes on in the background; the lock is free when the session ends at worst)", l.key, ctx.Err())
	case <-bound.C:
		return fmt.Errorf("zookeeper: unlock %q: no server answered within the session timeout %v; the lock is free once the session has expired: %w",
			l.key, l.s.sessionTimeout(), kv.ErrNotReachable)
	}
}

// Token implements kv.Locker.
func (l *locker) Token() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hold == nil {
		return 0
	}
	return l.hold.token
}

func (l *locker) held() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hold == nil {
		return "", fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrNotLocked)
	}
	return l.hold.node, nil
}
