package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// closeTimeout bounds the requests Close makes (lease revokes, unlocks):
// Close has no ctx, and a dead server must not make it hang.
const closeTimeout = 3 * time.Second

// Store is the etcd implementation of kv.Store and kv.Streamer.
type Store struct {
	c       *clientv3.Client
	owned   bool // Close closes c
	tracked bool // c reports whether writes were sent (see outcome.go)
	settings

	base     string // "" or "/<root>": user key k lives at base+"/"+k
	internal string // base+"/"+kv.ReservedSegmentPrefix: locks live below

	ctx        context.Context // ends on Close; parent of every goroutine
	cancel     context.CancelFunc
	goroutines driver.Group // Close stops it under mu, with closed, then waits

	mu     sync.Mutex
	closed bool
	locks  map[*locker]struct{}

	ka *keepAlives

	endLife context.CancelFunc // New's client lifetime; nil for NewFromClient

	// testHook, set by a test of this package before the calls it traces,
	// is called at the named points of Close and Lock, to reproduce
	// interleavings that timing alone makes rare.
	testHook func(point string)
}

var (
	_ kv.Store    = (*Store)(nil)
	_ kv.Streamer = (*Store)(nil)
)

// New connects to the cluster in cfg and checks, within ctx and
// cfg.DialTimeout, that it answers: an unreachable cluster is
// kv.ErrNotReachable, a bad config ErrInvalidConfig. The Store owns its
// client and closes it on Close.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	dial := cfg.DialTimeout
	if dial == 0 {
		dial = DefaultDialTimeout
	}
	start := time.Now()
	// With credentials, clientv3.New itself dials and authenticates. Its
	// Context bounds that, but it is also the client's lifetime, so it
	// cannot be the caller's ctx (which may end once New returned): the
	// caller's ctx ends the client's own only until New is done with it.
	life, endLife := context.WithCancel(context.Background())
	stopBound := context.AfterFunc(ctx, endLife)
	defer stopBound()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DialTimeout: dial,
		Context:     life,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithStatsHandler(sendTracker{})},
	})
	if err != nil {
		endLife()
		if sentinel := sentinelOf(err); errors.Is(sentinel, kv.ErrAuthFailed) || errors.Is(sentinel, kv.ErrPermissionDenied) {
			return nil, fmt.Errorf("etcd: connect %v: %w: %w", cfg.Endpoints, sentinel, err)
		}
		return nil, noAnswer(ctx, cfg, dial, start, err)
	}
	s := newStore(c, true, st)
	s.endLife = endLife
	s.tracked = true
	pctx, cancel := context.WithTimeout(ctx, dial)
	defer cancel()
	// clientv3.New does not wait for a connection; one cheap read proves the
	// endpoints, TLS and credentials work before the caller relies on them.
	if _, err := s.c.Get(pctx, s.internal+"/ping", clientv3.WithCountOnly()); err != nil {
		mapped := s.mapErr(pctx, fmt.Sprintf("connect %v", cfg.Endpoints), "", err) // before Close, which would make it ErrClosed
		_ = s.Close()
		if pctx.Err() != nil {
			return nil, noAnswer(ctx, cfg, dial, start, pctx.Err())
		}
		return nil, mapped
	}
	if !stopBound() && ctx.Err() != nil {
		// The caller's ctx ended the client just now.
		_ = s.Close()
		return nil, noAnswer(ctx, cfg, dial, start, ctx.Err())
	}
	return s, nil
}

// noAnswer is New's error when the cluster did not answer in time: it says
// from where, and what is there. The caller's deadline ending first is the
// same case for the caller (kv.ErrNotReachable), with ctx's error kept in
// the chain.
func noAnswer(ctx context.Context, cfg Config, dial time.Duration, start time.Time, err error) error {
	bound := fmt.Sprintf("DialTimeout %v", dial)
	if cerr := ctx.Err(); cerr != nil {
		bound = "the caller's ctx"
		if !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", cerr, err) // what the client saw, too
		}
	}
	return fmt.Errorf("etcd: connect %v: %w: no answer within %v (%s): %s: %w",
		cfg.Endpoints, kv.ErrNotReachable, time.Since(start).Round(time.Millisecond), bound, diagnose(cfg.Endpoints, cfg.TLS), err)
}

// NewFromClient wraps a client the caller built and keeps owning: Close
// releases what the Store created (leases, locks, watches) but leaves the
// client open. cfg's connection fields (Endpoints, TLS, Username,
// Password, DialTimeout) come from the client: they must be empty.
func NewFromClient(c *clientv3.Client, cfg Config) (*Store, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidConfig)
	}
	if len(cfg.Endpoints) > 0 || cfg.TLS != nil || cfg.Username != "" || cfg.Password != "" || cfg.DialTimeout != 0 {
		return nil, fmt.Errorf("%w: Endpoints, TLS, Username, Password and DialTimeout come from the *clientv3.Client given to NewFromClient; leave them empty", ErrInvalidConfig)
	}
	st, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	return newStore(c, false, st), nil
}

func newStore(c *clientv3.Client, owned bool, st settings) *Store {
	s := &Store{c: c, owned: owned, settings: st, locks: map[*locker]struct{}{}}
	if st.root != "" {
		s.base = "/" + st.root
	}
	s.internal = s.base + "/" + kv.ReservedSegmentPrefix
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ka = newKeepAlives(s)
	return s
}

// Client returns the underlying etcd client, for what the kv contract does
// not cover. Closing it makes the Store fail with kv.ErrNotReachable or
// kv.ErrClosed; tests use that to simulate a crashed process, since nothing
// is revoked.
func (s *Store) Client() *clientv3.Client { return s.c }

// Close revokes the KeepAlive leases (their keys vanish at once), releases
// held locks, ends every watch with an update carrying kv.ErrClosed, waits
// for the Store's goroutines and closes the client if New created it. When
// the server cannot be reached, revokes give up after a few seconds and the
// leases expire by themselves within their TTL. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.goroutines.Stop()
	locks := make([]*locker, 0, len(s.locks))
	for l := range s.locks {
		locks = append(locks, l)
	}
	s.mu.Unlock()
	if s.testHook != nil {
		s.testHook("close: locks taken")
	}

	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	for _, l := range locks {
		l.release(ctx)
	}
	s.ka.revokeAll(ctx)
	s.cancel()
	s.goroutines.Wait()
	if s.owned {
		err := s.c.Close()
		s.endLife()
		return err
	}
	return nil
}

// check is kv.ErrClosed after Close, else nil (as Consul's and
// ZooKeeper's check).
func (s *Store) check() error {
	if s.isClosed() {
		return kv.ErrClosed
	}
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// checkOpen starts every call once its arguments are valid: the ended
// ctx's error, then ErrClosed after Close (driver.Usable's order), so that
// no work starts on either.
func (s *Store) checkOpen(ctx context.Context, op string) error {
	if err := driver.Usable(ctx, s.check()); err != nil {
		return fmt.Errorf("etcd: %s: %w", op, err)
	}
	return nil
}

// etcdKey maps a normalised user key to its etcd key.
func (s *Store) etcdKey(key string) string { return s.base + "/" + key }

// rangePrefix maps a normalised prefix to the etcd key prefix of every key
// strictly below it.
func (s *Store) rangePrefix(prefix string) string { return s.base + "/" + kv.DirPrefix(prefix) }

// userKey maps an etcd key back to the user key, and reports false for keys
// that are not user keys of this Store (internal keys).
func (s *Store) userKey(etcdKey []byte) (string, bool) {
	k := string(etcdKey[len(s.base)+1:])
	if isInternal(k) {
		return "", false
	}
	return k, true
}

// isInternal reports whether a key relative to the root is a driver's own
// key: one with a segment starting with "__regent", which no user key can
// have. Not only the top segment: a Store whose root lies below this one's
// keeps its locks at <its root>/__regent.
func isInternal(relKey string) bool {
	return strings.HasPrefix(relKey, kv.ReservedSegmentPrefix) ||
		strings.Contains(relKey, "/"+kv.ReservedSegmentPrefix)
}

func (s *Store) pair(key string, v []byte, modRev int64) *kv.KVPair {
	if v == nil {
		v = []byte{}
	}
	return &kv.KVPair{Key: key, Value: v, LastIndex: uint64(modRev), Revision: uint64(modRev)}
}
