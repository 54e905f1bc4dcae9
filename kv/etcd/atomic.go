package etcd

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/kv"
)

// errNotWritten marks a transaction whose comparison failed; the caller
// turns it into the kv error the else branch tells.
var errNotWritten = errors.New("etcd: comparison failed")

// AtomicPut is a transaction on the key's ModRevision (create-only: its
// CreateRevision is 0). When the comparison fails, the same transaction
// reads the key back, so ErrKeyModified and ErrKeyNotFound are told apart
// without a second round trip.
func (s *Store) AtomicPut(ctx context.Context, key string, value []byte, previous *kv.KVPair, opts *kv.WriteOptions) (bool, *kv.KVPair, error) {
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
	k, err := s.checkWrite(ctx, "atomic put", key, value, opts)
	if err != nil {
		return false, nil, err
	}
	ek := s.etcdKey(k)
	cmp := clientv3.Compare(clientv3.CreateRevision(ek), "=", 0)
	if previous != nil {
		if previous.LastIndex == 0 {
			// ModRevision 0 would match a missing key: never a valid version.
			return false, nil, s.staleError(ctx, "atomic put", k)
		}
		cmp = clientv3.Compare(clientv3.ModRevision(ek), "=", int64(previous.LastIndex))
	}
	var resp *clientv3.TxnResponse
	wctx, sent := s.trackSend(ctx)
	err = s.withLease(ctx, k, value, opts, nil, func(lease []clientv3.OpOption) error {
		var err error
		resp, err = s.c.Txn(wctx).If(cmp).
			Then(clientv3.OpPut(ek, string(value), lease...)).
			Else(clientv3.OpGet(ek, clientv3.WithKeysOnly())).
			Commit()
		if err == nil && !resp.Succeeded {
			return errNotWritten
		}
		return err
	})
	switch {
	case errors.Is(err, errNotWritten):
		switch {
		case previous == nil:
			return false, nil, fmt.Errorf("etcd: atomic put %q: %w", k, kv.ErrKeyExists)
		case len(resp.Responses[0].GetResponseRange().Kvs) == 0:
			return false, nil, fmt.Errorf("etcd: atomic put %q: %w", k, kv.ErrKeyNotFound)
		}
		return false, nil, fmt.Errorf("etcd: atomic put %q: %w", k, kv.ErrKeyModified)
	case err != nil:
		return false, nil, s.mapWriteErr(ctx, "atomic put", k, err, sent)
	}
	// The transaction's revision is the put's ModRevision.
	return true, s.pair(k, append([]byte{}, value...), resp.Header.Revision), nil
}

// AtomicDelete is a transaction on the key's ModRevision that reads the key
// back when the comparison fails, as AtomicPut.
func (s *Store) AtomicDelete(ctx context.Context, key string, previous *kv.KVPair) (bool, error) {
	ctx, done := kv.BoundRequest(ctx, s.reqTO)
	defer done()
	k, err := s.checkKey(ctx, "atomic delete", key)
	if err != nil {
		return false, err
	}
	if previous == nil {
		return false, fmt.Errorf("etcd: atomic delete %q: %w", k, kv.ErrPreviousNotSpecified)
	}
	if previous.LastIndex == 0 {
		return false, s.staleError(ctx, "atomic delete", k)
	}
	ek := s.etcdKey(k)
	wctx, sent := s.trackSend(ctx)
	resp, err := s.c.Txn(wctx).
		If(clientv3.Compare(clientv3.ModRevision(ek), "=", int64(previous.LastIndex))).
		Then(clientv3.OpDelete(ek)).
		Else(clientv3.OpGet(ek, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return false, s.mapWriteErr(ctx, "atomic delete", k, err, sent)
	}
	if !resp.Succeeded {
		if len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
			return false, fmt.Errorf("etcd: atomic delete %q: %w", k, kv.ErrKeyNotFound)
		}
		return false, fmt.Errorf("etcd: atomic delete %q: %w", k, kv.ErrKeyModified)
	}
	s.ka.forget(k)
	return true, nil
}

// staleError answers a compare against LastIndex 0, which no stored version
// has: ErrKeyNotFound if the key is missing, else ErrKeyModified.
func (s *Store) staleError(ctx context.Context, op, k string) error {
	ok, err := s.Exists(ctx, k, nil)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("etcd: %s %q: %w", op, k, kv.ErrKeyNotFound)
	}
	return fmt.Errorf("etcd: %s %q: %w", op, k, kv.ErrKeyModified)
}
