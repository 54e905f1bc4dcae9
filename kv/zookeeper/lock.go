package zookeeper

import (
	"context"
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
// session timeout and is shortened to leave max(T/10, 200ms) before the
// earliest moment the server may expire the session.
//
// The holder confirms its znode with the server every third of that
// deadline (an Exists; go-zookeeper's pings keep the session itself
// alive), and the lost channel closes when the znode is deleted, when the
// session expires, or when no confirmation has come back for
// RenewDeadline, counted from the send time of the last one answered: the
// server cannot expire the session sooner than a session timeout after
// it received that request. A connection that drops and comes back within
// the deadline, to the same server or another member, keeps the lock.
// When the hold ends for any reason but the session's end, the contender
// znode is deleted (in the background, for as long as the session lives),
// so that a lost hold never blocks the next contender, this Locker
// included.
func (s *Store) NewLock(ctx context.Context, key string, opts *kv.LockOptions) (kv.Locker, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: new lock: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	var o kv.LockOptions
	if opts != nil {
		o = *opts
	}
	if o.TTL < 0 || o.RenewDeadline < 0 {
		return nil, fmt.Errorf("zookeeper: new lock %q: %w", k, &kv.TTLError{TTL: o.TTL, Reason: "negative TTL or RenewDeadline"})
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = s.sessionTimeout()
	}
	if err := s.checkSessionTTL(ttl); err != nil {
		return nil, fmt.Errorf("zookeeper: new lock %q: %w", k, err)
	}
	if o.RenewDeadline >= ttl {
		return nil, fmt.Errorf("zookeeper: new lock %q: %w", k, &kv.TTLError{TTL: ttl,
			Reason: fmt.Sprintf("RenewDeadline %v must be below it, or a cut-off holder could act after the lock passed on", o.RenewDeadline)})
	}
	value := []byte{}
	if o.Value != nil {
		if err := kv.CheckValue(o.Value); err != nil {
			return nil, fmt.Errorf("zookeeper: new lock %q: %w", k, err)
		}
		value = append(value, o.Value...)
	}
	return &locker{
		s:     s,
		key:   k,
		dir:   s.root + "/" + locksDir + "/" + escapeKey(k) + "/" + lockLeaf,
		value: value,
		renew: o.RenewDeadline,
		sem:   make(chan struct{}, 1),
	}, nil
}

type locker struct {
	s     *Store
	key   string
	dir   string // parent znode of the contenders
	value []byte
	renew time.Duration // LockOptions.RenewDeadline; 0: the default

	sem chan struct{} // one Lock or TryLock at a time

	mu   sync.Mutex
	hold *hold // nil when not held
	// cleanup, when set, ends once the previous hold's contender znode is
	// gone; the next attempt waits for it, so that it never queues behind
	// its own leftover.
	cleanup <-chan struct{}
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
// RenewDeadline asks: a tenth of the session timeout, at least 200 ms. It
// covers clock-rate differences and the time the holder needs to act.
func lostMargin(t time.Duration) time.Duration { return max(t/10, 200*time.Millisecond) }

// window is how long after the send time of its last confirmed check the
// holder still believes it holds the lock, for session timeout t.
func (l *locker) window(t time.Duration) time.Duration {
	renew := l.renew
	if renew == 0 {
		renew = t * 2 / 3
	}
	return max(min(renew, t-lostMargin(t)), 0)
}

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
func (l *locker) TryLock(ctx context.Context) (<-chan struct{}, error) { return l.lock(ctx, false) }

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
	giveUp := func(err error) (*hold, error) {
		l.remove(node)
		return nil, err
	}
	// A waiter rides out connection trouble (and a session expiry, by
	// queueing again) until ctx ends.
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(time.Second), backoff.WithMaxElapsedTime(0))
	for {
		first, err := l.waitTurn(ctx, node, wait)
		switch {
		case errors.Is(err, errRequeue):
			// The session expired while waiting and took the contender
			// with it: queue again, at the back, on the new session.
			s.log.Warn("zookeeper: lock contender lost with the session; queueing again", zapKey(l.key))
			if node, err = l.enqueue(ctx); err != nil {
				return nil, fmt.Errorf("zookeeper: lock %q: %w", l.key, err)
			}
			continue
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
		break
	}
	// Confirm the znode, learn its owner session and token, and arm the
	// watch that reports its deletion; the send time starts the hold's
	// renew window.
	sent := time.Now()
	var st *zk.Stat
	var w <-chan zk.Event
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
	h := &hold{node: node, owner: st.EphemeralOwner, token: uint64(st.Czxid),
		lost: make(chan struct{}), stop: make(chan struct{}), exited: make(chan struct{})}
	l.mu.Lock()
	l.hold = h
	l.mu.Unlock()
	if !s.spawn(func() { l.monitor(h, sent, w) }) {
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
func (l *locker) waitTurn(ctx context.Context, node string, wait bool) (bool, error) {
	s := l.s
	var children []string
	err := s.call(ctx, func() error {
		var err error
		children, _, err = s.conn.Children(l.dir)
		return err
	})
	if err != nil {
		return false, err
	}
	sort.Slice(children, func(i, j int) bool { return seqOf(children[i]) < seqOf(children[j]) })
	idx := slices.Index(children, node[strings.LastIndexByte(node, '/')+1:])
	switch {
	case idx < 0:
		return false, errRequeue
	case idx == 0:
		return true, nil
	case !wait:
		return false, fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrLockHeld)
	}
	var ok bool
	var w <-chan zk.Event
	err = s.call(ctx, func() error {
		var err error
		ok, _, w, err = s.conn.ExistsW(l.dir + "/" + children[idx-1])
		return err
	})
	if err != nil || !ok {
		return false, err
	}
	select {
	case <-w:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-s.done:
		return false, fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrClosed)
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

// enqueue creates this locker's contender znode.
func (l *locker) enqueue(ctx context.Context) (string, error) {
	s := l.s
	// A contender left behind by an abandoned create would block every
	// other contender until this session ends: whoever finishes last
	// (this call, or the create running on after ctx ended) removes it.
	var (
		createMu  sync.Mutex
		node      string
		abandoned bool
	)
	err := s.call(ctx, func() error {
		for {
			n, err := s.conn.CreateProtectedEphemeralSequential(l.dir+"/"+contenderName, l.value, s.acl)
			if errors.Is(err, zk.ErrNoNode) {
				if err := s.ensurePath(l.dir); err != nil {
					return err
				}
				continue
			}
			createMu.Lock()
			defer createMu.Unlock()
			if abandoned && err == nil {
				l.remove(n)
				return nil
			}
			node = n
			return err
		}
	})
	if err != nil {
		createMu.Lock()
		abandoned = true
		n := node
		createMu.Unlock()
		if n != "" {
			l.remove(n)
		}
		return "", err
	}
	return node, nil
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
				if !s.spawn(func() {
					sent := time.Now()
					ok, st, err := s.conn.Exists(h.node)
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
// contender znode is removed as long as its session lives.
func (l *locker) lose(h *hold, why string, cleanup bool) {
	h.lostOnce.Do(func() {
		l.mu.Lock()
		if l.hold == h {
			l.hold = nil
		}
		if cleanup {
			l.cleanup = l.remove(h.node)
		}
		l.mu.Unlock()
		if why != "store closed" {
			l.s.log.Warn("zookeeper: lock lost", zapKey(l.key), zapWhy(why))
		}
		close(h.lost)
	})
}

// remove deletes a contender znode in the background, retrying through
// connection trouble for as long as the Store is open: the znode blocks
// every other contender until it is gone or its session ends. The channel
// closes once it is gone (or the session that owned it, or the Store).
func (l *locker) remove(node string) <-chan struct{} {
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
	if !s.spawn(func() {
		defer close(done)
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
	gone := l.remove(h.node)
	l.mu.Lock()
	l.cleanup = gone
	l.mu.Unlock()
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
