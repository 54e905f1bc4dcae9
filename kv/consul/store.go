package consul

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
	"github.com/regentkv/regent/kv/internal/tlsprobe"
)

// Store is a kv.Store and kv.Streamer on Consul's KV API. Create it with
// New or NewFromClient; it is safe for concurrent use.
type Store struct {
	client    *api.Client
	kv        *api.KV
	transport *failover // nil for NewFromClient
	cfg       *resolved
	log       *zap.Logger

	root     string // "<Root>/": every user key starts with it
	internal string // "__regent/<Root>/": lock keys and probes

	// ctx ends when the Store is closed or killed; every background
	// goroutine and every blocking query of a watch derives from it.
	ctx        context.Context
	cancel     context.CancelFunc
	goroutines driver.Group // stopped by markClosed, waited for by Close and kill

	closeOnce sync.Once
	closed    atomic.Bool
	killed    atomic.Bool

	sessions  *keepAlivePool
	kaKeys    kaKeys // the KeepAlive keys to restore after a session loss
	baselines *baselineCache

	hubs watchHubs // the shared blocking queries of Watch

	mu    sync.Mutex
	holds map[*hold]struct{} // locks held, released by Close
}

var (
	_ kv.Store    = (*Store)(nil)
	_ kv.Streamer = (*Store)(nil)
)

// New connects to the Consul agents of cfg. It checks that one answers a
// KV read with the configured token before returning (kv.ErrNotReachable
// otherwise), within ctx.
func New(ctx context.Context, cfg Config) (*Store, error) {
	r, err := cfg.resolve(true)
	if err != nil {
		return nil, err
	}
	tr := cleanhttp.DefaultPooledTransport()
	if r.TLS != nil {
		tr.TLSClientConfig = r.TLS.Clone()
	}
	fo := &failover{base: tr, hosts: r.hosts, log: r.Logger}
	ac := &api.Config{
		Address:    r.hosts[0],
		Scheme:     r.scheme,
		Datacenter: r.Datacenter,
		Namespace:  r.Namespace,
		Partition:  r.Partition,
		Token:      r.Token,
		HttpClient: &http.Client{Transport: fo},
	}
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s := newStore(client, r)
	s.transport = fo
	fo.closing = s.ctx
	if _, err := s.Revision(ctx); err != nil {
		_ = s.Close()
		if r.scheme == "https" && errors.Is(err, kv.ErrNotReachable) {
			if why := tlsprobe.Problem(r.hosts[0], r.TLS); why != "" {
				err = fmt.Errorf("%w (%s)", err, why)
			}
		}
		return nil, connectError(ctx, r.hosts, err)
	}
	return s, nil
}

// connectError is New's error when its first request failed: it names the
// agents, says when the answer was not Consul's, and matches
// kv.ErrNotReachable when the caller's ctx ran out first too.
func connectError(ctx context.Context, hosts []string, err error) error {
	var se api.StatusError
	switch {
	case errors.Is(err, ErrPermissionDenied) || errors.Is(err, kv.ErrNotReachable):
	case errors.As(err, &se) && se.Code == http.StatusNotFound:
		err = fmt.Errorf("%w: the agent answered 404: an HTTP server without Consul's API on that port?: %w", kv.ErrNotReachable, err)
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: no answer within the caller's ctx: %w", kv.ErrNotReachable, err)
	}
	return fmt.Errorf("consul: connect %v: %w", hosts, err)
}

// NewFromClient builds a Store on a client the caller already configured
// (address, token, TLS). The Store never closes the client's connections.
// cfg's connection fields (Addresses, Token, TLS) must be empty; the other
// fields apply. Datacenter, Namespace and Partition, when empty, are the
// client's.
func NewFromClient(client *api.Client, cfg Config) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil *api.Client", ErrInvalidConfig)
	}
	r, err := cfg.resolve(false)
	if err != nil {
		return nil, err
	}
	return newStore(client, r), nil
}

func newStore(client *api.Client, r *resolved) *Store {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		client:    client,
		kv:        client.KV(),
		cfg:       r,
		log:       r.Logger,
		root:      r.Root + "/",
		internal:  kv.ReservedSegmentPrefix + "/" + r.Root + "/",
		ctx:       ctx,
		cancel:    cancel,
		holds:     make(map[*hold]struct{}),
		baselines: newBaselineCache(16),
	}
	s.sessions = newKeepAlivePool(s)
	return s
}

// Client returns the underlying consul/api client, for what the Store does
// not cover. Writing to the Store's internal keys through it voids the
// Store's guarantees.
func (s *Store) Client() *api.Client { return s.client }

// Close ends every watch (with kv.ErrClosed), releases the locks held
// through this Store, destroys its keep-alive sessions (so that KeepAlive
// keys vanish at once rather than after their TTL) and waits for its
// goroutines. The requests it makes are bounded by Config.CloseTimeout; if
// they fail, the server expires the sessions after their TTL. Close is
// idempotent; it returns the first error of the first call.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.markClosed()
		s.cancel()
		holds := s.takeHolds()
		for _, h := range holds {
			h.stop()
		}
		s.goroutines.Wait()
		if s.transport != nil {
			// Idle keep-alive connections would otherwise stay open until
			// the server times them out, and count against its
			// per-client connection limit (http_max_conns_per_client).
			defer s.transport.base.CloseIdleConnections()
		}
		if s.killed.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(outlivesClose(context.Background()), s.cfg.CloseTimeout)
		defer cancel()
		for _, h := range holds {
			if e := h.release(ctx); e != nil && err == nil {
				err = e
			}
		}
		if e := s.sessions.destroyAll(ctx); e != nil && err == nil {
			err = e
		}
	})
	return err
}

// kill makes the Store die without a goodbye, as a crashed process would:
// its connections are cut (every later request fails as unreachable),
// renewals and watches stop, held locks are lost, and nothing is released
// on the server. Close afterwards only waits. Test-only.
func (s *Store) kill() {
	s.killed.Store(true)
	if s.transport != nil {
		s.transport.cut.Store(true)
	}
	s.cancel()
	for _, h := range s.takeHolds() {
		h.stop()
		h.markLost()
	}
	// Without Stop: a killed Store is not closed, and a test may still call
	// it (every call fails, cut off); what such a call starts ends with
	// s.ctx, already cancelled, and Close waits for it.
	s.goroutines.Wait()
}

// markClosed flips closed and stops the goroutine group under mu, so that
// nothing holding mu sees the Store open after spawn refuses.
func (s *Store) markClosed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	s.goroutines.Stop()
}

// spawn runs f on a goroutine that Close waits for, or returns ErrClosed.
func (s *Store) spawn(f func()) error {
	if !s.goroutines.Go(f) {
		return kv.ErrClosed
	}
	return nil
}

func (s *Store) takeHolds() []*hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	holds := make([]*hold, 0, len(s.holds))
	for h := range s.holds {
		holds = append(holds, h)
	}
	clear(s.holds)
	return holds
}

// check returns kv.ErrClosed once the Store is closed.
func (s *Store) check() error {
	if s.closed.Load() {
		return kv.ErrClosed
	}
	return nil
}

// consulKey maps a normalised user key to its Consul key.
func (s *Store) consulKey(key string) string { return s.root + key }

// consulDir maps a normalised user prefix to the Consul prefix of the keys
// strictly below it.
func (s *Store) consulDir(prefix string) string { return s.root + kv.DirPrefix(prefix) }

// userKey maps a Consul key back to a user key. Keys under Root that are not
// valid regent keys (written by other tools, "a//b") are reported as false
// and left out of results.
func (s *Store) userKey(ck string) (string, bool) {
	if len(ck) <= len(s.root) || ck[:len(s.root)] != s.root {
		return "", false
	}
	k := ck[len(s.root):]
	n, err := kv.NormalizeKey(k)
	return k, err == nil && n == k
}

// lockKey is where the lock on a user key lives: outside Root, so that no
// user prefix covers it.
func (s *Store) lockKey(key string) string { return s.internal + "locks/" + key }

func (s *Store) pair(p *api.KVPair) *kv.KVPair {
	k, _ := s.userKey(p.Key)
	v := p.Value
	if v == nil {
		v = []byte{}
	}
	return &kv.KVPair{Key: k, Value: v, LastIndex: p.ModifyIndex, Revision: p.ModifyIndex}
}

func (s *Store) queryOpts(ctx context.Context, consistent bool) *api.QueryOptions {
	q := &api.QueryOptions{RequireConsistent: consistent}
	return q.WithContext(ctx)
}

func (s *Store) writeOpts(ctx context.Context) *api.WriteOptions {
	w := &api.WriteOptions{}
	return w.WithContext(ctx)
}

// MinTTL is the smallest TTL the Store accepts for keys and locks: twice
// Config.SessionTTLMin, since a session of TTL t lives 2t on the server.
func (s *Store) MinTTL() time.Duration { return s.cfg.minTTL }
