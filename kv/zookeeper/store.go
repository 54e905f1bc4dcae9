package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Store is a kv.Store and kv.Streamer on one ZooKeeper session. It is safe
// for concurrent use.
type Store struct {
	cfg  Config
	conn *zk.Conn
	log  *zap.Logger
	acl  []zk.ACL
	root string // znode of the empty key prefix, no trailing slash

	done       chan struct{}   // closed by Close
	goroutines driver.Group    // stopped, then waited for, by Close
	ctx        context.Context // cancelled by Close, for retries
	cancel     context.CancelFunc
	closeOnce  sync.Once

	mu           sync.Mutex
	subs         map[*inbox]struct{}
	ephemerals   map[string]ephemeral // KeepAlive keys of this Store, by znode
	connected    bool
	expired      bool          // a session expired and no new one is up yet
	stateChanged chan struct{} // closed and replaced on every state change
	sessionUp    atomic.Bool   // connected with a session (see handshakeDialer)
	granted      atomic.Int64  // session timeout the server granted, ms (see handshakeDialer)
	restore      chan struct{} // cap 1: re-create KeepAlive keys

	dials   dialLog // what New's connection attempts met, for its errors
	parked  parking // Snapshot watchers waiting for Events
	barrier barrier // shared read barriers (see readBarrier)
}

var (
	_ kv.Store    = (*Store)(nil)
	_ kv.Streamer = (*Store)(nil)
)

// New connects to ZooKeeper and returns a Store once the first session is
// up, ctx ends (ctx.Err()) or cfg.ConnectTimeout passes (ErrNotReachable).
// It creates cfg.Root if missing.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:          cfg.redacted(), // the secret goes to the connection only: a printed *Store must not carry it
		log:          cfg.Logger,
		root:         cfg.Root,
		done:         make(chan struct{}),
		subs:         make(map[*inbox]struct{}),
		ephemerals:   make(map[string]ephemeral),
		stateChanged: make(chan struct{}),
		restore:      make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.acl = zk.WorldACL(zk.PermAll)
	if cfg.Auth != "" {
		user, pass, _ := strings.Cut(cfg.Auth, ":")
		s.acl = zk.DigestACL(zk.PermAll, user, pass)
	}
	// The event callback, not the event channel, is how the Store follows
	// the session: go-zookeeper calls it synchronously from its receive
	// loop, in server order, and never drops an event, while the channel
	// silently drops whatever nobody reads in time.
	dialer := cfg.Dialer
	if dialer == nil {
		dialer = net.DialTimeout
	}
	if cfg.TLS != nil {
		dialer = tlsDialer(dialer, cfg.TLS)
	}
	dialer = handshakeDialer(dialer, max(cfg.SessionTimeout/time.Duration(3*len(cfg.Servers)), time.Second), &s.sessionUp, &s.granted)
	dialer = s.recordDials(dialer)
	conn, _, err := zk.Connect(cfg.Servers, cfg.SessionTimeout,
		zk.WithEventCallback(s.onEvent),
		zk.WithLogger(zapPrintf{s.log}),
		zk.WithDialer(dialer))
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("zookeeper: connect: %w: %w", kv.ErrNotReachable, err)
	}
	s.conn = conn
	if err := s.waitSession(ctx); err != nil {
		s.cancel()
		conn.Close()
		return nil, err
	}
	if cfg.Auth != "" {
		if err := conn.AddAuth("digest", []byte(cfg.Auth)); err != nil {
			s.cancel()
			conn.Close()
			return nil, fmt.Errorf("zookeeper: digest auth: %w", err)
		}
	}
	if err := s.ensurePath(s.root); err != nil {
		s.cancel()
		conn.Close()
		return nil, fmt.Errorf("zookeeper: create root %s: %w", s.root, s.mapErr(err))
	}
	// Exists, which ensurePath may have relied on, needs no right: one read
	// of the root proves the identity may read there before the caller
	// relies on it, as etcd's and Consul's New do.
	if _, _, err := conn.Get(s.root); err != nil {
		s.cancel()
		conn.Close()
		return nil, fmt.Errorf("zookeeper: read root %s: %w", s.root, s.mapErr(err))
	}
	s.goroutines.Go(s.sessionLoop)
	return s, nil
}

func (s *Store) waitSession(ctx context.Context) error {
	timer := time.NewTimer(s.cfg.ConnectTimeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		up, ch := s.connected, s.stateChanged
		s.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			// The caller's deadline is the same case for the caller: not
			// reachable, with ctx's error kept in the chain.
			return fmt.Errorf("zookeeper: no session with %v within the caller's ctx: %w: %s: %w",
				s.cfg.Servers, kv.ErrNotReachable, s.dialReport(), ctx.Err())
		case <-timer.C:
			return fmt.Errorf("zookeeper: no session with %v after %v (ConnectTimeout): %w: %s",
				s.cfg.Servers, s.cfg.ConnectTimeout, kv.ErrNotReachable, s.dialReport())
		}
	}
}

// onEvent runs on go-zookeeper's receive (or connect) loop: it must not
// block and must not call the connection.
func (s *Store) onEvent(ev zk.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Type == zk.EventSession {
		changed := true
		switch ev.State {
		case zk.StateHasSession:
			s.connected = true
			s.sessionUp.Store(true)
			if s.expired {
				s.expired = false
				select {
				case s.restore <- struct{}{}:
				default:
				}
			}
		case zk.StateExpired:
			s.expired = true
			s.connected = false
		case zk.StateDisconnected:
			s.connected = false
		default:
			changed = false
		}
		if ev.State != zk.StateHasSession {
			s.sessionUp.Store(false)
		}
		if changed {
			close(s.stateChanged)
			s.stateChanged = make(chan struct{})
		}
	}
	for in := range s.subs {
		in.offer(ev)
	}
}

// sessionTimeout is the session timeout the server granted (it clamps the
// one asked for to its own bounds), or Config.SessionTimeout until a
// server has answered.
func (s *Store) sessionTimeout() time.Duration {
	if ms := s.granted.Load(); ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return s.cfg.SessionTimeout
}

// ephemeral is the Store's record of one of its KeepAlive keys.
type ephemeral struct {
	data []byte
	// guarded: written by GuardedPut. Such a key must not outlive the lock
	// that guarded it, and that lock's znode died with the same session, so
	// it is never re-created after a session expiry: putting it back with a
	// plain create would resurrect a deposed holder's write.
	guarded bool
}

// sessionLoop re-creates KeepAlive keys after a session expiry: the server
// deleted them with the old session, and nobody else will put them back.
func (s *Store) sessionLoop() {
	for {
		select {
		case <-s.done:
			return
		case <-s.restore:
		}
		s.mu.Lock()
		todo := make(map[string]ephemeral, len(s.ephemerals))
		for p, e := range s.ephemerals {
			todo[p] = e
		}
		s.mu.Unlock()
		if len(todo) > 0 {
			s.log.Warn("zookeeper: session expired; re-creating KeepAlive keys", zap.Int("keys", len(todo)))
		}
		for p, e := range todo {
			err := errGuardedLost
			if !e.guarded {
				err = s.restoreEphemeral(p, e)
			}
			if errors.Is(err, errForgotten) {
				continue // deleted (or rewritten) since the copy was taken
			}
			if err == nil {
				s.log.Info("zookeeper: KeepAlive key re-created", zap.String("key", s.key(p)))
				continue
			}
			s.mu.Lock()
			if cur, ok := s.ephemerals[p]; ok && cur.guarded == e.guarded && string(cur.data) == string(e.data) {
				delete(s.ephemerals, p)
			}
			s.mu.Unlock()
			s.log.Error("zookeeper: KeepAlive key lost with the session", zap.String("key", s.key(p)), zap.Error(err))
			if s.cfg.OnKeepAliveLost != nil {
				s.cfg.OnKeepAliveLost(s.key(p), err)
			}
		}
	}
}

// errGuardedLost is what OnKeepAliveLost hears of a guarded KeepAlive key.
var errGuardedLost = fmt.Errorf("zookeeper: written under a lock that ended with the expired session, so not re-created: %w", kv.ErrLockLost)

// errForgotten: the KeepAlive key to restore was deleted or rewritten
// since sessionLoop took its copy of the records.
var errForgotten = errors.New("zookeeper: KeepAlive record gone")

// recorded reports whether e is still p's KeepAlive record.
func (s *Store) recorded(p string, e ephemeral) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.ephemerals[p]
	return ok && cur.guarded == e.guarded && string(cur.data) == string(e.data)
}

func (s *Store) restoreEphemeral(p string, e ephemeral) error {
	data := e.data
	op := func() error {
		select {
		case <-s.done:
			return permanent(kv.ErrClosed)
		default:
		}
		if !s.recorded(p, e) {
			return permanent(errForgotten)
		}
		err := s.mutation().create(p, data, mode{kind: kindEphemeral})
		if errors.Is(err, zk.ErrNodeExists) {
			_, st, gerr := s.conn.Get(p)
			if gerr == nil && st.EphemeralOwner == s.conn.SessionID() {
				return nil // a Put of ours won the race
			}
			return permanent(fmt.Errorf("zookeeper: %s was re-created by another writer: %w", s.key(p), kv.ErrKeyExists))
		}
		if isConnErr(err) {
			return err // retry once the next session is up
		}
		if err != nil {
			return permanent(err)
		}
		return nil
	}
	return retry(s.ctx, op)
}

// Close ends the session (the server deletes this Store's KeepAlive keys
// and lock nodes at once), ends watches with ErrClosed and waits for every
// goroutine of the Store. It is idempotent and always returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.goroutines.Stop()
		close(s.done)
		s.cancel()
		s.parked.closeAll()
		s.conn.Close()
		s.goroutines.Wait()
	})
	return nil
}

func (s *Store) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// begin is the entry check of every call, once its arguments are valid:
// the ended ctx's error, then ErrClosed (driver.Usable's order).
func (s *Store) begin(ctx context.Context) error {
	return driver.Usable(ctx, s.check())
}

// check is kv.ErrClosed after Close, else nil (as Consul's and etcd's
// check).
func (s *Store) check() error {
	if s.closed() {
		return kv.ErrClosed
	}
	return nil
}

// call runs a blocking go-zookeeper call under ctx. go-zookeeper takes no
// ctx and may wait a whole reconnect for an answer, so a ctx that can end
// gets the call in a goroutine of its own; the call itself is not undone,
// which is why writes that ctx abandons may still apply.
func (s *Store) call(ctx context.Context, fn func() error) error {
	ctx, cancel := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer cancel()
	return s.callUnbounded(ctx, fn)
}

// callUnbounded is call without Config.RequestTimeout, for the first read
// of a watch or a stream, which lasts as long as its ctx lets it (a large
// tree may take longer than the bound).
func (s *Store) callUnbounded(ctx context.Context, fn func() error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if ctx.Done() == nil {
		return s.mapErr(fn())
	}
	res := make(chan error, 1)
	if !s.goroutines.Go(func() { res <- fn() }) {
		return fmt.Errorf("zookeeper: %w", kv.ErrClosed)
	}
	select {
	case err := <-res:
		return s.mapErr(err)
	case <-ctx.Done():
		return kv.CtxErr(ctx)
	}
}

// callWrite is call for a write: an error that leaves open whether the
// server applied it also matches kv.ErrOutcomeUnknown. That is a ctx that
// ended while the call was in flight, a connection or session that ended
// under a request already sent (go-zookeeper fails those with
// ErrConnectionClosed, ErrSessionExpired or, on Close, ErrClosing), and any
// failure after one of the write's requests applied (w.applied). A request
// that never left fails with ErrNoServer: a write stopped there, before
// any change, was not applied. The driver cannot tell which requests had
// left when a connection broke, so a write that broke on a read before
// its first change may be reported unknown too.
func (s *Store) callWrite(ctx context.Context, w *mutation, fn func() error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	var raw error
	err := s.call(ctx, func() error {
		raw = fn()
		return raw
	})
	var rt *kv.RequestTimeoutError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()), errors.As(err, &rt):
		return kv.UnknownOutcome(err) // abandoned in flight
	}
	if w.applied {
		return kv.UnknownOutcome(err)
	}
	if errors.Is(raw, zk.ErrNoServer) {
		return err
	}
	if errors.Is(raw, zk.ErrConnectionClosed) || errors.Is(raw, zk.ErrSessionExpired) ||
		errors.Is(raw, zk.ErrSessionMoved) || errors.Is(raw, zk.ErrClosing) {
		return kv.UnknownOutcome(err)
	}
	return err
}

// mapErr translates go-zookeeper errors into kv sentinels, keeping the
// original in the chain.
func (s *Store) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kv.ErrClosed) || errors.Is(err, kv.ErrKeyNotFound) || errors.Is(err, kv.ErrKeyExists) ||
		errors.Is(err, kv.ErrKeyModified) || errors.Is(err, kv.ErrNotReachable) || errors.Is(err, kv.ErrCallNotSupported) ||
		errors.Is(err, kv.ErrLockLost) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, kv.ErrPermissionDenied) || errors.Is(err, kv.ErrAuthFailed):
		return err
	case s.closed() && (errors.Is(err, zk.ErrClosing) || errors.Is(err, zk.ErrConnectionClosed)):
		return fmt.Errorf("zookeeper: %w", kv.ErrClosed)
	case errors.Is(err, zk.ErrNoNode):
		return fmt.Errorf("zookeeper: %w: %w", kv.ErrKeyNotFound, err)
	case errors.Is(err, zk.ErrNodeExists):
		return fmt.Errorf("zookeeper: %w: %w", kv.ErrKeyExists, err)
	case errors.Is(err, zk.ErrBadVersion):
		return fmt.Errorf("zookeeper: %w: %w", kv.ErrKeyModified, err)
	case errors.Is(err, zk.ErrNoAuth):
		return fmt.Errorf("zookeeper: %w (the znode's ACL does not allow it for this Store's Auth identity): %w", kv.ErrPermissionDenied, err)
	case errors.Is(err, zk.ErrAuthFailed):
		return fmt.Errorf("zookeeper: %w: %w", kv.ErrAuthFailed, err)
	case isConnErr(err):
		return fmt.Errorf("zookeeper: %w: %w", kv.ErrNotReachable, err)
	}
	return fmt.Errorf("zookeeper: %w", err)
}

func isConnErr(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrSessionMoved) || errors.Is(err, zk.ErrClosing)
}

// path maps a normalised key ("" for the root prefix) to its znode.
func (s *Store) path(key string) string {
	if key == "" {
		return s.root
	}
	return s.root + "/" + escapeKey(key)
}

// key maps a znode under root back to its key.
func (s *Store) key(p string) string {
	if p == s.root {
		return ""
	}
	return unescapeKey(strings.TrimPrefix(p, s.root+"/"))
}

// zapPrintf routes go-zookeeper's printf logging to zap at debug level:
// connection churn is normal and the Store reports what matters itself.
type zapPrintf struct{ l *zap.Logger }

func (z zapPrintf) Printf(format string, args ...any) {
	z.l.Debug(fmt.Sprintf("zk: "+format, args...))
}

func zapKey(k string) zap.Field { return zap.String("key", k) }
func zapWhy(w string) zap.Field { return zap.String("reason", w) }

// ConnectedServer returns the address of the ensemble member this Store's
// connection talks to now, or was last connected to (go-zookeeper moves to
// another on a reconnect), for logs and diagnostics: which member a
// client's reads come from, and which member's loss it will notice.
func (s *Store) ConnectedServer() string { return s.conn.Server() }
