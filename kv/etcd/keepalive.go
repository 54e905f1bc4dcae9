package etcd

import (
	"context"
	"sort"
	"sync"

	"github.com/cenkalti/backoff/v4"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
)

// keepAlives holds the Store's KeepAlive leases: one per distinct TTL (in
// seconds), granted on first use and kept alive until Close revokes it.
//
// When a lease is lost anyway (the server was unreachable for longer than
// the TTL, so it expired and its keys were deleted), the lease's goroutine
// grants a new one and writes the keys back, each only if it is still
// absent: a key that someone else wrote in the meantime is theirs now. A
// key written by GuardedPut is restored under the same guard, only while
// its lock is still held: otherwise a deposed holder's write would land
// after the lock passed on. The loss and the restore are logged. Puts made while the lease is being
// re-granted wait for the new one (within their ctx).
type keepAlives struct {
	s      *Store
	mu     sync.Mutex
	leases map[int64]*kaLease // by TTL in seconds
	owner  map[string]int64   // user key -> TTL of the lease it is on
}

type kaLease struct {
	ttl   int64
	ready chan struct{} // closed once id is valid; replaced when it is lost
	id    clientv3.LeaseID
	keys  map[string]kaKey // user key -> what to restore after a loss
}

// kaKey is a KeepAlive key as last written.
type kaKey struct {
	value []byte
	guard *guard // non-nil for a GuardedPut: restore only under it
}

// guard is the lock hold a guarded write was made under: its contender key
// and that key's CreateRevision.
type guard struct {
	key string
	rev int64
}

func (g *guard) cmps() []clientv3.Cmp {
	if g == nil {
		return nil
	}
	return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(g.key), "=", g.rev)}
}

func newKeepAlives(s *Store) *keepAlives {
	return &keepAlives{s: s, leases: map[int64]*kaLease{}, owner: map[string]int64{}}
}

// lease returns a live lease for ttl seconds, granting it on first use.
func (k *keepAlives) lease(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	k.mu.Lock()
	l, ok := k.leases[ttl]
	if !ok {
		l = &kaLease{ttl: ttl, ready: make(chan struct{}), keys: map[string]kaKey{}}
		k.leases[ttl] = l
		if !k.s.goroutines.Go(func() { k.run(l) }) {
			delete(k.leases, ttl)
			k.mu.Unlock()
			return 0, k.s.checkOpen(context.Background(), "put")
		}
	}
	ready := l.ready
	k.mu.Unlock()

	select {
	case <-ready:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-k.s.ctx.Done():
		return 0, k.s.checkOpen(context.Background(), "put")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return l.id, nil
}

// invalidate makes lease wait for a new grant after a write found id gone.
func (k *keepAlives) invalidate(ttl int64, id clientv3.LeaseID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.leases[ttl]; l != nil && l.id == id && isClosed(l.ready) {
		l.ready = make(chan struct{})
	}
}

// remember records that key was written with value on the lease for ttl,
// under g when the write was guarded.
func (k *keepAlives) remember(key string, value []byte, ttl int64, g *guard) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.forgetLocked(key)
	if l := k.leases[ttl]; l != nil {
		// A copy: the caller may reuse its buffer.
		l.keys[key] = kaKey{value: append([]byte{}, value...), guard: g}
		k.owner[key] = ttl
	}
}

// forget drops key from the bookkeeping: it was rewritten without
// KeepAlive, or deleted, so it must not be restored.
func (k *keepAlives) forget(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.forgetLocked(key)
}

func (k *keepAlives) forgetLocked(key string) {
	if ttl, ok := k.owner[key]; ok {
		delete(k.leases[ttl].keys, key)
		delete(k.owner, key)
	}
}

// forgetBelow forgets every key strictly below prefix.
func (k *keepAlives) forgetBelow(prefix string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key := range k.owner {
		if kv.IsBelow(key, prefix) {
			k.forgetLocked(key)
		}
	}
}

// revokeAll revokes every lease so that their keys vanish now rather than a
// TTL later. Called by Close before the goroutines stop.
func (k *keepAlives) revokeAll(ctx context.Context) {
	k.mu.Lock()
	var ids []clientv3.LeaseID
	for _, l := range k.leases {
		if isClosed(l.ready) {
			ids = append(ids, l.id)
		}
	}
	k.mu.Unlock()
	for _, id := range ids {
		if _, err := k.s.c.Revoke(ctx, id); err != nil {
			k.s.log.Warn("etcd: revoking a KeepAlive lease failed; its keys expire within its TTL",
				zap.Int64("lease", int64(id)), zap.Error(err))
		}
	}
}

// run grants the lease, keeps it alive, and starts over when it is lost,
// until the Store closes.
func (k *keepAlives) run(l *kaLease) {
	ctx := k.s.ctx
	restore := false
	for ctx.Err() == nil {
		id, err := k.grant(ctx, l.ttl)
		if err != nil {
			return // only when the Store closes
		}
		k.mu.Lock()
		l.id = id
		if !isClosed(l.ready) {
			close(l.ready)
		}
		keys := make(map[string]kaKey, len(l.keys))
		for key, v := range l.keys {
			keys[key] = v
		}
		k.mu.Unlock()
		if restore {
			k.restore(ctx, id, keys)
		}

		ch, err := k.s.c.KeepAlive(ctx, id)
		if err == nil {
			for range ch { //nolint:revive // drain: the client renews; we only watch for the end
			}
		}
		if ctx.Err() != nil {
			return
		}
		if k.s.c.Ctx().Err() != nil {
			// The etcd client itself was closed (by its owner, with
			// NewFromClient), not the server lost: nothing can renew the
			// lease now, and re-granting would spin.
			k.s.log.Warn("etcd: the etcd client was closed under this Store; KeepAlive keys are no longer renewed and expire with their TTL",
				zap.Int64("lease", int64(id)), zap.Int64("ttl_seconds", l.ttl))
			return
		}
		why := "the lease expired or was revoked on the server (no renewal reached it within its TTL)"
		if err != nil {
			why = "the keep-alive stream could not be opened"
		}
		k.s.log.Warn("etcd: KeepAlive lease lost: "+why+"; re-granting and restoring its keys",
			zap.Int64("lease", int64(id)), zap.Int64("ttl_seconds", l.ttl), zap.Error(err))
		k.mu.Lock()
		if l.id == id && isClosed(l.ready) {
			l.ready = make(chan struct{})
		}
		k.mu.Unlock()
		restore = true
	}
}

// grant retries Grant with backoff until it succeeds or ctx ends.
func (k *keepAlives) grant(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	b := backoff.NewExponentialBackOff()
	b.MaxElapsedTime = 0 // until the Store closes: it exists to keep these keys
	var id clientv3.LeaseID
	err := backoff.Retry(func() error {
		resp, err := k.s.c.Grant(ctx, ttl)
		if err != nil {
			k.s.log.Debug("etcd: lease grant failed; retrying", zap.Error(err))
			return err
		}
		id = resp.ID
		return nil
	}, backoff.WithContext(b, ctx))
	return id, err
}

// restore writes back the keys of a lost lease that are still absent (and,
// for guarded ones, whose lock is still held), in key order.
func (k *keepAlives) restore(ctx context.Context, id clientv3.LeaseID, keys map[string]kaKey) {
	names := make([]string, 0, len(keys))
	for key := range keys {
		names = append(names, key)
	}
	sort.Strings(names)
	for _, key := range names {
		v := keys[key]
		ek := k.s.etcdKey(key)
		resp, err := k.s.c.Txn(ctx).
			If(append(v.guard.cmps(), clientv3.Compare(clientv3.CreateRevision(ek), "=", 0))...).
			Then(clientv3.OpPut(ek, string(v.value), clientv3.WithLease(id))).
			Commit()
		switch {
		case err != nil:
			k.s.log.Warn("etcd: restoring a KeepAlive key failed", zap.String("key", key), zap.Error(err))
		case !resp.Succeeded:
			// Someone else wrote it meanwhile (theirs now), or its lock
			// passed on: either way it is not ours to restore.
			k.forget(key)
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
