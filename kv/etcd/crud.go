package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/kv"
)

// Put writes value at key. With a TTL and no KeepAlive it grants a fresh
// lease per call, so that every Put restarts the clock (one extra round
// trip); with KeepAlive the key joins the Store's lease for that TTL.
func (s *Store) Put(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
	k, err := s.checkWrite(ctx, "put", key, value, opts)
	if err != nil {
		return err
	}
	ek := s.etcdKey(k)
	wctx, sent := s.trackSend(ctx)
	err = s.withLease(ctx, k, value, opts, nil, func(lease []clientv3.OpOption) error {
		_, err := s.c.Put(wctx, ek, string(value), lease...)
		return err
	})
	return s.mapWriteErr(ctx, "put", k, err, sent)
}

// Get returns the pair at key. Reads are linearizable whatever
// ReadOptions.Consistent says: etcd's cheaper serializable read may miss the
// caller's own last write, which is the kind of surprise this package avoids.
func (s *Store) Get(ctx context.Context, key string, _ *kv.ReadOptions) (*kv.KVPair, error) {
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
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
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
	k, err := s.checkKey(ctx, "delete", key)
	if err != nil {
		return err
	}
	s.ka.forget(k)
	wctx, sent := s.trackSend(ctx)
	resp, err := s.c.Delete(wctx, s.etcdKey(k))
	if err != nil {
		return s.mapWriteErr(ctx, "delete", k, err, sent)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("etcd: delete %q: %w", k, kv.ErrKeyNotFound)
	}
	return nil
}

// Exists reports whether key exists, without transferring its value.
func (s *Store) Exists(ctx context.Context, key string, _ *kv.ReadOptions) (bool, error) {
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
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
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
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

// DeleteTree removes every key strictly below prefix in one transaction,
// sparing internal keys: this Store's, and those of any Store whose root
// lies below (a "__regent" segment at any depth), so that wiping a tree
// never breaks a lock held in it. It reads the tree's keys first to find
// the internal subtrees, then deletes the ranges between them in a
// transaction that fails if a key was created in the tree meanwhile (a new
// internal subtree could be among them); that is retried, and after
// deleteTreeAttempts the last attempt goes unguarded.
func (s *Store) DeleteTree(ctx context.Context, prefix string) error {
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
	p, err := s.checkPrefix(ctx, "delete tree", prefix)
	if err != nil {
		return err
	}
	s.ka.forgetBelow(p)
	rp := s.rangePrefix(p)
	for attempt := 1; ; attempt++ {
		resp, err := s.c.Get(ctx, rp, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return s.mapErr(ctx, "delete tree", p, err)
		}
		wctx, sent := s.trackSend(ctx)
		txn := s.c.Txn(wctx)
		if attempt < deleteTreeAttempts {
			txn = txn.If(clientv3.Compare(clientv3.CreateRevision(rp), "<", resp.Header.Revision+1).WithPrefix())
		}
		tr, err := txn.Then(s.deleteAround(rp, resp.Kvs)...).Commit()
		if err != nil {
			return s.mapWriteErr(ctx, "delete tree", p, err, sent)
		}
		if tr.Succeeded {
			return nil
		}
	}
}

// deleteTreeAttempts bounds DeleteTree's guarded attempts (see DeleteTree).
const deleteTreeAttempts = 5

// deleteAround returns the deletes of every key below the etcd prefix rp
// except the internal subtrees among kvs (sorted keys below rp).
func (s *Store) deleteAround(rp string, kvs []*mvccpb.KeyValue) []clientv3.Op {
	var ops []clientv3.Op
	from := rp
	skip := "" // the internal subtree being skipped
	for _, kvp := range kvs {
		ek := string(kvp.Key)
		if skip != "" && strings.HasPrefix(ek, skip) {
			continue
		}
		j := strings.Index("/"+ek[len(s.base)+1:], "/"+kv.ReservedSegmentPrefix)
		if j < 0 {
			continue
		}
		skip = ek[:len(s.base)+1+j] + kv.ReservedSegmentPrefix
		if from < skip {
			ops = append(ops, clientv3.OpDelete(from, clientv3.WithRange(skip)))
		}
		from = clientv3.GetPrefixRangeEnd(skip)
	}
	if end := clientv3.GetPrefixRangeEnd(rp); from < end {
		ops = append(ops, clientv3.OpDelete(from, clientv3.WithRange(end)))
	}
	return ops
}

func (s *Store) checkKey(ctx context.Context, op, key string) (string, error) {
	k, err := normalizeKey(op, key)
	if err != nil {
		return "", err
	}
	return k, s.checkOpen(ctx, op)
}

func normalizeKey(op, key string) (string, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return "", fmt.Errorf("etcd: %s: %w", op, err)
	}
	return k, nil
}

func (s *Store) checkPrefix(ctx context.Context, op, prefix string) (string, error) {
	p, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return "", fmt.Errorf("etcd: %s: %w", op, err)
	}
	return p, s.checkOpen(ctx, op)
}

// checkWrite checks a write's arguments, then (checkOpen) the ctx and the
// Store: driver.Usable's one order.
func (s *Store) checkWrite(ctx context.Context, op, key string, value []byte, opts *kv.WriteOptions) (string, error) {
	k, err := s.checkWriteArgs(op, key, value, opts)
	if err != nil {
		return "", err
	}
	return k, s.checkOpen(ctx, op)
}

// checkWriteArgs checks a write's key, value and options only.
func (s *Store) checkWriteArgs(op, key string, value []byte, opts *kv.WriteOptions) (string, error) {
	k, err := normalizeKey(op, key)
	if err != nil {
		return "", err
	}
	if err := kv.CheckValue(value); err != nil {
		return "", fmt.Errorf("etcd: %s %q: %w", op, k, err)
	}
	if err := s.checkTTL(opts); err != nil {
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
			return &beforeWriteError{err}
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
			return &beforeWriteError{err}
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

// checkTTL is kv.CheckWriteOptions with the store's minimum, saying how to
// lower it when that is what refused the TTL.
func (s *Store) checkTTL(opts *kv.WriteOptions) error {
	err := kv.CheckWriteOptions(opts, s.minTTL)
	var te *kv.TTLError
	if errors.As(err, &te) && te.Min > 0 && te.Reason == "" {
		te.Reason = "etcd silently lengthens leases shorter than 1.5 election timeouts; " +
			"on a cluster with a shorter election timeout, etcd.Config.MinTTL lowers this minimum"
	}
	return err
}

// CheckWriteOptions implements kv.OptionsChecker.
func (s *Store) CheckWriteOptions(opts *kv.WriteOptions) error {
	if err := s.checkTTL(opts); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	return nil
}

var _ kv.OptionsChecker = (*Store)(nil)
