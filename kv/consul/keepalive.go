package consul

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
)

// kaKeys is the bookkeeping behind restoring KeepAlive keys, as the etcd
// and ZooKeeper drivers do: when a KeepAlive session is lost (no renewal
// went through for its TTL, so the server invalidated it and deleted its
// keys), the Store makes a new session and writes each of its keys back,
// only if still absent (a key someone else wrote meanwhile is theirs). A
// key written under a lock (GuardedPut) is never restored: the lock may
// have passed on. The kv contract: a KeepAlive key lives while its Store is
// open and reachable.
type kaKeys struct {
	// writes is held shared by every write that changes the bookkeeping,
	// across its transaction and its note, and exclusively by a restore
	// across each key's transaction: a Delete can then never be undone by
	// a restore that read the key before it.
	writes sync.RWMutex

	mu   sync.Mutex
	keys map[string]kaKey // Consul key -> last KeepAlive write
	gen  uint64
}

type kaKey struct {
	value   []byte
	session string // the session the key is locked by: only its loss takes the key
	gen     uint64 // which write: a restore forgets only what it tried
}

// note records the outcome of a successful write of ck: restored after the
// loss of session if it was a plain KeepAlive write, forgotten otherwise.
func (k *kaKeys) note(ck string, value []byte, session string, keepAlive bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !keepAlive {
		delete(k.keys, ck)
		return
	}
	if k.keys == nil {
		k.keys = map[string]kaKey{}
	}
	k.gen++
	k.keys[ck] = kaKey{value: value, session: session, gen: k.gen}
}

// forget drops ck (deleted, or rewritten without KeepAlive or under a lock).
func (k *kaKeys) forget(ck string) { k.note(ck, nil, "", false) }

// forgetUnlessRefused forgets ck after a write of it that did not use the
// bookkeeping (a value too large for a transaction), unless the write was
// refused: then the key is as it was, and so is its entry.
func (k *kaKeys) forgetUnlessRefused(ck string, err error) {
	if err == nil || errors.Is(err, kv.ErrOutcomeUnknown) {
		k.forget(ck)
	}
}

// forgetBelow drops every key below the Consul directory dir.
func (k *kaKeys) forgetBelow(dir string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for ck := range k.keys {
		if strings.HasPrefix(ck, dir) {
			delete(k.keys, ck)
		}
	}
}

// on returns a copy of the keys locked by session id.
func (k *kaKeys) on(id string) map[string]kaKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]kaKey{}
	for ck, e := range k.keys {
		if e.session == id {
			out[ck] = e
		}
	}
	return out
}

// forgetIf drops ck if it is still the write gen.
func (k *kaKeys) forgetIf(ck string, gen uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.keys[ck]; ok && e.gen == gen {
		delete(k.keys, ck)
	}
}

// lose handles the loss of KeepAlive session id of ttl, found by its
// renewer or by a write the server refused for it: the first to report it
// (while id is still the pool's session of ttl) stops the renewer and
// starts the restore of its keys; later reports do nothing.
func (p *keepAlivePool) lose(ttl time.Duration, id string, why error) {
	if !p.drop(ttl, id) {
		return
	}
	p.s.log.Warn("consul: keep-alive session lost; its keys are gone until they are restored on a new session", zap.Duration("ttl", ttl), zap.Error(why))
	_ = p.s.spawn(func() { p.restore(ttl, id) }) // fails only once the Store is closing
}

// restore runs after the KeepAlive session old of ttl was lost: it destroys
// old (so that no key stays on a session nobody renews), then writes every
// key that was on old back on a new session, retrying until done or the
// Store closes.
func (p *keepAlivePool) restore(ttl time.Duration, old string) {
	s := p.s
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMaxInterval(2*time.Second),
		backoff.WithMaxElapsedTime(0))
	wait := func() bool {
		t := time.NewTimer(bo.NextBackOff())
		defer t.Stop()
		select {
		case <-s.ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	call := func(f func(ctx context.Context) error) error {
		ctx, cancel := kv.BoundRequest(s.ctx, s.cfg.RequestTimeout)
		defer cancel()
		return f(ctx)
	}
	for {
		err := call(func(ctx context.Context) error { return s.destroySession(ctx, old) })
		if err == nil {
			break
		}
		s.log.Debug("consul: destroying the lost keep-alive session failed; retrying", zap.String("session", old), zap.Error(err))
		if !wait() {
			return
		}
	}
	// A write on old that landed before the destroy may not have noted its
	// key yet: wait for every write in flight. Writes after this point see
	// old refused and move to a new session.
	s.kaKeys.writes.Lock()
	s.kaKeys.writes.Unlock() //nolint:staticcheck // an empty critical section is the point: a barrier
	bo.Reset()
	restored := 0
	defer func() {
		if restored > 0 {
			s.log.Info("consul: keep-alive keys restored on a new session", zap.Duration("ttl", ttl), zap.Int("keys", restored))
		}
	}()
	for {
		keys := s.kaKeys.on(old)
		if len(keys) == 0 {
			return
		}
		var id string
		err := call(func(ctx context.Context) error {
			var err error
			id, err = p.get(ctx, ttl)
			return err
		})
		for ck, e := range keys {
			if err != nil {
				break
			}
			var done bool
			err = call(func(ctx context.Context) error {
				var err error
				done, err = p.restoreKey(ctx, ck, e, id)
				return err
			})
			var f *txnFailure
			switch {
			case errors.As(err, &f) && f.OpIndex == 0:
				s.kaKeys.forgetIf(ck, e.gen) // written by someone else meanwhile: theirs now
				err = nil
			case errors.As(err, &f):
				err = s.lockRefused(ttl, id, f)
			case err == nil && done:
				restored++
			}
		}
		if err == nil {
			// Every key taken was restored, forgotten, or rewritten by its
			// own write since (and so no longer on old).
			return
		}
		s.log.Warn("consul: restoring keep-alive keys failed; retrying", zap.Duration("ttl", ttl), zap.Error(err))
		if !wait() {
			return
		}
	}
}

// restoreKey writes e back at ck on session id, only if ck is absent, and
// only while no write of ck is in flight; false when ck was deleted or
// rewritten since the loss (nothing to do). The key is then on id.
func (p *keepAlivePool) restoreKey(ctx context.Context, ck string, e kaKey, id string) (bool, error) {
	k := &p.s.kaKeys
	k.writes.Lock()
	defer k.writes.Unlock()
	k.mu.Lock()
	cur, ok := k.keys[ck]
	k.mu.Unlock()
	if !ok || cur.gen != e.gen {
		return false, nil
	}
	lock := &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVLock, Key: ck, Value: e.value, Session: id}}
	_, err := p.s.txn(ctx, "restore keep-alive key", ck, api.TxnOps{kvOp(api.KVCheckNotExists, ck), lock})
	if err != nil {
		return false, err
	}
	k.mu.Lock()
	if cur, ok := k.keys[ck]; ok && cur.gen == e.gen {
		cur.session = id
		k.keys[ck] = cur
	}
	k.mu.Unlock()
	return true, nil
}

// lockRefused explains a lock operation of session id that the server
// refused: if the session is gone (invalidated behind the renewer's back,
// or just before it noticed), that is a loss of a KeepAlive session of ttl
// (0 for none) and the error wraps errSessionGone; otherwise the key is in
// the lock-delay of another client's Consul lock, and the error wraps
// kv.ErrLockHeld. f is kept as text only, so that callers mapping a
// *txnFailure by its operation index do not take this one for theirs.
func (s *Store) lockRefused(ttl time.Duration, id string, f *txnFailure) error {
	// A request of its own: the write's ctx may be nearly spent, and a
	// loss left unreported would wait for the renewer to notice.
	ctx, cancel := kv.BoundRequest(s.ctx, s.cfg.RequestTimeout)
	defer cancel()
	entry, _, err := s.client.Session().Info(id, s.queryOpts(ctx, true))
	switch {
	case err != nil:
		return fmt.Errorf("the TTL session could not lock the key (%s), and reading the session failed: %w", f.Error(), s.translate(ctx, "read session", id, err))
	case entry == nil:
		if ttl > 0 {
			s.sessions.lose(ttl, id, fmt.Errorf("%w: session %s, found by a write", errSessionGone, id))
		}
		return fmt.Errorf("%w: %s", errSessionGone, f.Error())
	default:
		return fmt.Errorf("%w: the key is in the lock-delay of a Consul lock that held it (%s)", kv.ErrLockHeld, f.Error())
	}
}
