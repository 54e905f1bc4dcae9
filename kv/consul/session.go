package consul

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
)

// errSessionGone: the server no longer knows the session (expired,
// destroyed, or its node left).
var errSessionGone = errors.New("consul: session invalidated on the server")

// sessionTTL is the TTL to create a session with so that the server
// invalidates it ttl after its last renewal: Consul's timer runs for twice
// the session TTL (SessionTTLMultiplier, agent/consul/session_ttl.go). The
// server parses the TTL with time.ParseDuration and takes any value, so
// the half is rounded up to the nanosecond only, and the server's timer
// is ttl or 1ns more.
func sessionTTL(ttl time.Duration) time.Duration { return (ttl + 1) / 2 }

// createSession creates a session that the server invalidates ttl after its
// creation or last renewal (see sessionTTL). It has no health checks: its
// TTL is its only liveness signal, so that it does not die with the health
// of the agent the request happened to reach. sent is when the request was
// sent: the server's timer started after it, so the session lives at least
// until sent+ttl unless destroyed.
func (s *Store) createSession(ctx context.Context, name string, ttl time.Duration, behavior string, lockDelay time.Duration) (id string, sent time.Time, err error) {
	if lockDelay == 0 {
		// The server reads a lock-delay of 0 as "unset" and applies its
		// default of 15s; below 1000 it reads seconds. 1µs is the smallest
		// delay it takes as given.
		lockDelay = time.Microsecond
	}
	sent = time.Now()
	id, _, err = s.client.Session().CreateNoChecks(&api.SessionEntry{
		Name:      name,
		TTL:       sessionTTL(ttl).String(),
		Behavior:  behavior,
		LockDelay: lockDelay,
		Namespace: s.cfg.Namespace,
	}, s.writeOpts(ctx))
	if err != nil {
		return "", time.Time{}, s.translate(ctx, "create session", name, err)
	}
	return id, sent, nil
}

func (s *Store) destroySession(ctx context.Context, id string) error {
	_, err := s.client.Session().Destroy(id, s.writeOpts(ctx))
	return s.translate(ctx, "destroy session", id, err)
}

// ttlSession returns the session a write with opts must lock its key with
// ("" for no TTL) and a function to call with the write's outcome.
//
// Consul KV has no per-key TTL. A TTL key is a key locked by a session with
// behaviour "delete" and that TTL: when the session is invalidated the
// server deletes the key. Without KeepAlive each write gets its own session
// that nobody renews, so the key expires TTL after the session was created,
// just before the write; a re-Put makes a new session, restarting the
// clock, and the old one expires holding nothing. With KeepAlive all keys
// of one TTL share a session the Store renews.
//
// TTL sessions have lock-delay 0: lock-delay would stop the key from being
// written again for that long after its session expired, and a TTL key is
// typically re-created right after it expired.
func (s *Store) ttlSession(ctx context.Context, opts *kv.WriteOptions) (string, func(ok bool), error) {
	if opts == nil || opts.TTL == 0 {
		return "", func(bool) {}, nil
	}
	if opts.KeepAlive {
		id, err := s.sessions.get(ctx, opts.TTL)
		return id, func(bool) {}, err
	}
	id, _, err := s.createSession(ctx, "regent-ttl", opts.TTL, api.SessionBehaviorDelete, 0)
	if err != nil {
		return "", nil, err
	}
	return id, func(ok bool) {
		if !ok {
			// Nothing holds it; destroy it now rather than leave it to its
			// TTL. Best effort: it expires anyway.
			ctx, cancel := context.WithTimeout(outlivesClose(context.WithoutCancel(ctx)), s.cfg.CloseTimeout)
			defer cancel()
			_ = s.destroySession(ctx, id)
		}
	}, nil
}

// renew keeps session id, which the server expires ttl after its last
// renewal, alive until ctx ends. It renews every third of the session TTL
// (or of deadline, if shorter), so that two renewals can fail before the
// server's timer, or the deadline, runs out. It calls
// lost, once, and returns when the server says the session is gone, or
// when no renewal has succeeded for deadline: a renewal in flight is cut
// short at that deadline too, so a hung server cannot delay the verdict.
// Transient failures before the deadline are retried with backoff. The
// clock starts at since (when the create request was sent) and restarts at
// each successful renewal's send time: the server restarted its timer no
// earlier than that, so the session lives at least until then plus ttl.
func (s *Store) renew(ctx context.Context, id string, since time.Time, ttl, deadline time.Duration, lost func(error)) {
	period := min(sessionTTL(ttl), deadline) / 3
	lastOK := since
	// Retries come often enough that a blip ending well before the
	// deadline is bridged before it.
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(min(50*time.Millisecond, deadline/8)),
		backoff.WithMaxInterval(max(deadline/8, time.Millisecond)),
		backoff.WithMaxElapsedTime(0),
	)
	timer := time.NewTimer(period)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		sent := time.Now()
		reqCtx, cancel := context.WithDeadline(ctx, lastOK.Add(deadline))
		entry, _, err := s.client.Session().Renew(id, s.writeOpts(reqCtx))
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil && entry == nil {
			lost(fmt.Errorf("%w: session %s", errSessionGone, id))
			return
		}
		if err == nil {
			lastOK = sent
			bo.Reset()
			timer.Reset(period)
			continue
		}
		left := time.Until(lastOK.Add(deadline))
		if left <= 0 {
			lost(fmt.Errorf("%w: no renewal of session %s succeeded for %v: %w", kv.ErrNotReachable, id, deadline, err))
			return
		}
		s.log.Warn("consul: session renewal failed; retrying", zap.String("session", id), zap.Error(err))
		timer.Reset(min(bo.NextBackOff(), left))
	}
}

// keepAlivePool holds the Store's KeepAlive sessions, one per distinct TTL,
// each renewed by its own goroutine until the Store closes.
type keepAlivePool struct {
	s  *Store
	mu sync.Mutex
	m  map[time.Duration]*keepSession
}

type keepSession struct {
	id     string
	cancel context.CancelFunc
}

func newKeepAlivePool(s *Store) *keepAlivePool {
	return &keepAlivePool{s: s, m: make(map[time.Duration]*keepSession)}
}

// get returns the session for ttl, creating it (and its renewer) if needed.
// The lock is held across the create so that concurrent first writes share
// one session.
func (p *keepAlivePool) get(ctx context.Context, ttl time.Duration) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ks, ok := p.m[ttl]; ok {
		return ks.id, nil
	}
	if err := p.s.check(); err != nil {
		return "", err
	}
	id, sent, err := p.s.createSession(ctx, "regent-keepalive", ttl, api.SessionBehaviorDelete, 0)
	if err != nil {
		return "", err
	}
	rctx, cancel := context.WithCancel(p.s.ctx)
	err = p.s.spawn(func() {
		// TTL without a renewal is when the server may invalidate the
		// session: from then on its keys may be gone, and the next write
		// gets a new session rather than one that may die under it.
		p.s.renew(rctx, id, sent, ttl, ttl, func(err error) { p.lose(ttl, id, err) })
	})
	if err != nil {
		cancel()
		_ = p.s.destroySession(context.WithoutCancel(ctx), id)
		return "", err
	}
	p.m[ttl] = &keepSession{id: id, cancel: cancel}
	return id, nil
}

// drop forgets session id of ttl and stops its renewer; false if id was
// not (or no longer) the pool's session of ttl.
func (p *keepAlivePool) drop(ttl time.Duration, id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ks, ok := p.m[ttl]; ok && ks.id == id {
		ks.cancel()
		delete(p.m, ttl)
		return true
	}
	return false
}

// destroyAll destroys every session of the pool, removing their keys at
// once. The renewers have already stopped with the Store's ctx.
func (p *keepAlivePool) destroyAll(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for ttl, ks := range p.m {
		ks.cancel()
		if err := p.s.destroySession(ctx, ks.id); err != nil && first == nil {
			first = err
		}
		delete(p.m, ttl)
	}
	return first
}
