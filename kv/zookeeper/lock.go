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
// The lock lives as long as the session: opts.TTL is rounded up to the
// session timeout. The lost channel closes when the znode is deleted, when
// the session expires, and when the connection has been down for
// opts.RenewDeadline (0, the default: at once). Losing the connection is
// treated as losing the lock because go-zookeeper notices a silent network
// cut only after 2/3 of the session timeout, leaving at most 1/3 of it
// before the server may expire the session and let another holder in.
func (s *Store) NewLock(ctx context.Context, key string, opts *kv.LockOptions) (kv.Locker, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: new lock: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	l := &locker{s: s, key: k, dir: s.root + "/" + locksDir + "/" + escapeKey(k) + "/" + lockLeaf}
	if opts != nil {
		if opts.TTL < 0 || opts.RenewDeadline < 0 {
			return nil, fmt.Errorf("zookeeper: new lock %q: %w", k, &kv.TTLError{TTL: opts.TTL, Reason: "negative TTL or RenewDeadline"})
		}
		l.value = append([]byte{}, opts.Value...)
		l.renew = opts.RenewDeadline
	}
	return l, nil
}

type locker struct {
	s     *Store
	key   string
	dir   string
	value []byte
	renew time.Duration

	mu    sync.Mutex
	node  string // our contender znode while held
	token uint64
	lost  chan struct{}
	stop  chan struct{}
	once  *sync.Once
}

const contenderName = "c"

func seqOf(name string) string {
	if i := strings.LastIndex(name, contenderName); i >= 0 {
		return name[i+len(contenderName):]
	}
	return name
}

func (l *locker) Lock(ctx context.Context) (<-chan struct{}, error) { return l.lock(ctx, true) }

func (l *locker) TryLock(ctx context.Context) (<-chan struct{}, error) { return l.lock(ctx, false) }

func (l *locker) lock(ctx context.Context, wait bool) (<-chan struct{}, error) {
	s := l.s
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	l.mu.Lock()
	held := l.node != ""
	l.mu.Unlock()
	if held {
		return nil, fmt.Errorf("zookeeper: lock %q: already held by this locker: %w", l.key, kv.ErrLockHeld)
	}
	node, gen, err := l.enqueue(ctx)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: lock %q: %w", l.key, err)
	}
	giveUp := func(err error) (<-chan struct{}, error) {
		// Leave no contender behind; the session would remove it anyway.
		_ = s.conn.Delete(node, -1)
		return nil, err
	}
	// A waiter rides out connection trouble (and a session expiry, by
	// queueing again) until ctx ends.
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(time.Second), backoff.WithMaxElapsedTime(0))
	for {
		if err := s.begin(ctx); err != nil {
			return giveUp(err)
		}
		var children []string
		err := s.call(ctx, func() error {
			var err error
			children, _, err = s.conn.Children(l.dir)
			return err
		})
		if transient(err) {
			if err := pause(ctx, s.done, bo); err != nil {
				return giveUp(err)
			}
			continue
		}
		if err != nil {
			return giveUp(fmt.Errorf("zookeeper: lock %q: %w", l.key, err))
		}
		bo.Reset()
		sort.Slice(children, func(i, j int) bool { return seqOf(children[i]) < seqOf(children[j]) })
		mine := node[strings.LastIndexByte(node, '/')+1:]
		idx := slices.Index(children, mine)
		if idx < 0 {
			// The session expired while waiting and took the contender
			// with it: queue again, at the back, on the new session.
			s.log.Warn("zookeeper: lock contender lost with the session; queueing again", zapKey(l.key))
			if node, gen, err = l.enqueue(ctx); err != nil {
				return nil, fmt.Errorf("zookeeper: lock %q: %w", l.key, err)
			}
			continue
		}
		if idx == 0 {
			break
		}
		if !wait {
			return giveUp(fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrLockHeld))
		}
		var ok bool
		var w <-chan zk.Event
		err = s.call(ctx, func() error {
			var err error
			ok, _, w, err = s.conn.ExistsW(l.dir + "/" + children[idx-1])
			return err
		})
		if transient(err) {
			if err := pause(ctx, s.done, bo); err != nil {
				return giveUp(err)
			}
			continue
		}
		if err != nil {
			return giveUp(fmt.Errorf("zookeeper: lock %q: %w", l.key, err))
		}
		if !ok {
			continue
		}
		select {
		case <-w:
		case <-ctx.Done():
			return giveUp(ctx.Err())
		case <-s.done:
			return nil, fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrClosed)
		}
	}
	var st *zk.Stat
	err = s.call(ctx, func() error {
		ok, stat, err := s.conn.Exists(node)
		if err == nil && !ok {
			err = fmt.Errorf("contender znode gone as the lock was taken (session expired?): %w", kv.ErrLockLost)
		}
		st = stat
		return err
	})
	if err != nil {
		return giveUp(fmt.Errorf("zookeeper: lock %q: %w", l.key, err))
	}
	lost, stop := make(chan struct{}), make(chan struct{})
	once := new(sync.Once)
	l.mu.Lock()
	l.node, l.token, l.lost, l.stop, l.once = node, uint64(st.Czxid), lost, stop, once
	l.mu.Unlock()
	if !s.spawn(func() { l.monitor(node, gen, lost, stop, once) }) {
		l.release(node, once, lost)
		return nil, fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrClosed)
	}
	return lost, nil
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

// enqueue creates this locker's contender znode and returns it with the
// session generation it belongs to.
func (l *locker) enqueue(ctx context.Context) (string, uint64, error) {
	s := l.s
	s.mu.Lock()
	gen := s.generation
	s.mu.Unlock()
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
				_ = s.conn.Delete(n, -1)
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
			_ = s.conn.Delete(n, -1)
		}
		return "", 0, err
	}
	return node, gen, nil
}

// monitor closes lost when the hold ends for any reason but Unlock.
func (l *locker) monitor(node string, gen uint64, lost, stop chan struct{}, once *sync.Once) {
	s := l.s
	declare := func(why string) {
		s.log.Warn("zookeeper: lock lost", zapKey(l.key), zapWhy(why))
		l.release(node, once, lost)
	}
	var deadline <-chan time.Time
	for {
		s.mu.Lock()
		up, g, changed, since := s.connected, s.generation, s.stateChanged, s.disconnectedAt
		s.mu.Unlock()
		if g != gen {
			declare("session expired")
			return
		}
		if !up {
			if l.renew == 0 || time.Since(since) >= l.renew {
				declare("connection lost")
				return
			}
			deadline = time.After(l.renew - time.Since(since))
		} else {
			deadline = nil
		}
		var w <-chan zk.Event
		if up {
			ok, _, ch, err := s.conn.ExistsW(node)
			switch {
			case err == nil && !ok:
				declare("lock znode deleted")
				return
			case err == nil:
				w = ch
			}
		}
		select {
		case ev := <-w:
			if ev.Type == zk.EventNodeDeleted || ev.Type == zk.EventNotWatching {
				declare("lock znode deleted or session lost")
				return
			}
		case <-changed:
		case <-deadline:
		case <-stop:
			return
		case <-s.done:
			l.release(node, once, lost)
			return
		}
	}
}

// release forgets the hold and closes lost, once.
func (l *locker) release(node string, once *sync.Once, lost chan struct{}) {
	once.Do(func() {
		l.mu.Lock()
		if l.node == node {
			l.node, l.token = "", 0
		}
		l.mu.Unlock()
		close(lost)
	})
}

func (l *locker) Unlock(ctx context.Context) error {
	l.mu.Lock()
	node, stop, once, lost := l.node, l.stop, l.once, l.lost
	l.mu.Unlock()
	if node == "" {
		return nil
	}
	err := l.s.call(ctx, func() error {
		err := l.s.conn.Delete(node, -1)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	if err != nil && !errors.Is(err, kv.ErrClosed) {
		return fmt.Errorf("zookeeper: unlock %q: %w", l.key, err)
	}
	close(stop)
	l.release(node, once, lost)
	return nil
}

func (l *locker) Token() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token
}

func (l *locker) held() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.node == "" {
		return "", fmt.Errorf("zookeeper: lock %q: %w", l.key, kv.ErrNotLocked)
	}
	return l.node, nil
}

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
	return l.guarded(ctx, "guarded put", k, func() error {
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
			res, err := s.multi(ops...)
			if err != nil && len(res) > 0 && res[0].Error != nil && !errors.Is(res[0].Error, zk.ErrUnknown) && !isRollback(res[0].Error) {
				return errLockLost
			}
			if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrNodeExists) {
				continue
			}
			if err == nil {
				s.record(p, data, m)
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
	return l.guarded(ctx, "guarded delete", k, func() error {
		for range maxRaces {
			data, st, err := s.conn.Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("zookeeper: guarded delete %q: %w", k, kv.ErrKeyNotFound)
			}
			if err != nil {
				return err
			}
			if _, isKey := decode(data); !isKey {
				return fmt.Errorf("zookeeper: guarded delete %q: %w", k, kv.ErrKeyNotFound)
			}
			op := any(&zk.DeleteRequest{Path: p, Version: st.Version})
			if st.NumChildren > 0 {
				op = &zk.SetDataRequest{Path: p, Data: nil, Version: st.Version}
			}
			res, err := s.multi(guard, op)
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

func (l *locker) guarded(ctx context.Context, op, k string, fn func() error) error {
	err := l.s.call(ctx, fn)
	if errors.Is(err, errLockLost) {
		return fmt.Errorf("zookeeper: %s %q: the server no longer has this lock's znode: %w", op, k, kv.ErrLockLost)
	}
	return err
}
