package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/kv"
)

// Put writes value at key. With a TTL and no KeepAlive it grants a fresh
// lease per call, so that every Put restarts the clock (one extra round
// trip); with KeepAlive the key joins the Store's lease for that TTL.
func (s *Store) Put(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	k, err := s.checkWrite(ctx, "put", key, value, opts)
	if err != nil {
		return err
	}
	ek := s.etcdKey(k)
	err = s.withLease(ctx, k, value, opts, nil, func(lease []clientv3.OpOption) error {
		_, err := s.c.Put(ctx, ek, string(value), lease...)
		return err
	})
	return s.mapErr(ctx, "put", k, err)
}

// Get returns the pair at key. Reads are linearizable whatever
// ReadOptions.Consistent says: etcd's cheaper serializable read may miss the
// caller's own last write, which is the kind of surprise this package avoids.
func (s *Store) Get(ctx context.Context, key string, _ *kv.ReadOptions) (*kv.KVPair, error) {
	k, err := s.checkKey(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	resp, err := s.c.Get(ctx, s.etcdKey(k))
	if err != nil {
		return nil, s.mapErr(ctx, "get", k, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("etcd: get %q: %w", k, kv.ErrKeyNotFound)
	}
	kvp := resp.Kvs[0]
	return s.pair(k, kvp.Value, kvp.ModRevision), nil
}

// Delete removes key.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := s.checkKey(ctx, "delete", key)
	if err != nil {
		return err
	}
	s.ka.forget(k)
	resp, err := s.c.Delete(ctx, s.etcdKey(k))
	if err != nil {
		return s.mapErr(ctx, "delete", k, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("etcd: delete %q: %w", k, kv.ErrKeyNotFound)
	}
	return nil
}

// Exists reports whether key exists, without transferring its value.
func (s *Store) Exists(ctx context.Context, key string, _ *kv.ReadOptions) (bool, error) {
	k, err := s.checkKey(ctx, "exists", key)
	if err != nil {
		return false, err
	}
	resp, err := s.c.Get(ctx, s.etcdKey(k), clientv3.WithCountOnly())
	if err != nil {
		return false, s.mapErr(ctx, "exists", k, err)
	}
	return resp.Count > 0, nil
}

// List returns every pair strictly below prefix in one linearizable range
// read.
func (s *Store) List(ctx context.Context, prefix string, _ *kv.ReadOptions) ([]*kv.KVPair, error) {
	p, err := s.checkPrefix(ctx, "list", prefix)
	if err != nil {
		return nil, err
	}
	resp, err := s.c.Get(ctx, s.rangePrefix(p), clientv3.WithPrefix())
	if err != nil {
		return nil, s.mapErr(ctx, "list", p, err)
	}
	return s.pairsOf(resp.Kvs), nil
}

// DeleteTree removes every key strictly below prefix in one transaction.
// Below the root it spares the driver's internal keys, so that wiping a
// store never breaks the locks held in it.
func (s *Store) DeleteTree(ctx context.Context, prefix string) error {
	p, err := s.checkPrefix(ctx, "delete tree", prefix)
	if err != nil {
		return err
	}
	s.ka.forgetBelow(p)
	rp := s.rangePrefix(p)
	if p != "" {
		_, err = s.c.Delete(ctx, rp, clientv3.WithPrefix())
		return s.mapErr(ctx, "delete tree", p, err)
	}
	// Two ranges around the internal keys: [base/, base/__regent) and
	// [end of base/__regent, end of base/).
	_, err = s.c.Txn(ctx).Then(
		clientv3.OpDelete(rp, clientv3.WithRange(s.internal)),
		clientv3.OpDelete(clientv3.GetPrefixRangeEnd(s.internal), clientv3.WithRange(clientv3.GetPrefixRangeEnd(rp))),
	).Commit()
	return s.mapErr(ctx, "delete tree", p, err)
}

func (s *Store) checkKey(ctx context.Context, op, key string) (string, error) {
	if err := s.checkOpen(ctx, op); err != nil {
		return "", err
	}
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return "", fmt.Errorf("etcd: %s: %w", op, err)
	}
	return k, nil
}

func (s *Store) checkPrefix(ctx context.Context, op, prefix string) (string, error) {
	if err := s.checkOpen(ctx, op); err != nil {
		return "", err
	}
	p, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return "", fmt.Errorf("etcd: %s: %w", op, err)
	}
	return p, nil
}

func (s *Store) checkWrite(ctx context.Context, op, key string, value []byte, opts *kv.WriteOptions) (string, error) {
	k, err := s.checkKey(ctx, op, key)
	if err != nil {
		return "", err
	}
	if err := kv.CheckValue(value); err != nil {
		return "", fmt.Errorf("etcd: %s %q: %w", op, k, err)
	}
	if err := kv.CheckWriteOptions(opts, s.minTTL); err != nil {
		return "", fmt.Errorf("etcd: %s %q: %w", op, k, err)
	}
	return k, nil
}

// ttlSeconds rounds a TTL up to etcd's whole seconds.
func ttlSeconds(ttl time.Duration) int64 {
	return int64((ttl + time.Second - 1) / time.Second)
}

// withLease runs write with the lease options opts call for, and records a
// successful write with the KeepAlive bookkeeping. A KeepAlive write that
// races with the loss of its lease is retried once on the re-granted lease.
// A transaction whose comparison failed returns errNotWritten from write,
// which skips the bookkeeping and is handed back. g is the lock guard of a
// GuardedPut (nil otherwise), kept so that a restore stays guarded.
func (s *Store) withLease(ctx context.Context, k string, value []byte, opts *kv.WriteOptions, g *guard, write func([]clientv3.OpOption) error) error {
	if opts == nil || opts.TTL == 0 {
		err := write(nil)
		if err == nil {
			s.ka.forget(k)
		}
		return err
	}
	secs := ttlSeconds(opts.TTL)
	if !opts.KeepAlive {
		lease, err := s.c.Grant(ctx, secs)
		if err != nil {
			return err
		}
		err = write([]clientv3.OpOption{clientv3.WithLease(lease.ID)})
		if err == nil {
			s.ka.forget(k)
		}
		return err
	}
	for attempt := 0; ; attempt++ {
		id, err := s.ka.lease(ctx, secs)
		if err != nil {
			return err
		}
		err = write([]clientv3.OpOption{clientv3.WithLease(id)})
		if err == nil {
			s.ka.remember(k, value, secs, g)
			return nil
		}
		if attempt > 0 || !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseNotFound) {
			return err
		}
		s.ka.invalidate(secs, id)
	}
}
