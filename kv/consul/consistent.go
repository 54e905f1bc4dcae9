package consul

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv"
)

// A Consistent read on Consul is a transaction: a no-op write (the delete
// of a key that never exists, "__regent/<Root>/read-barrier") followed by
// the reads. A transaction with a write goes through raft, and its reads
// are evaluated when the leader's state machine applies it, after every
// write committed before it; a leader deposed without knowing it cannot
// commit it. So the answer is linearizable, which Consul's own
// "?consistent" mode is not: in hashicorp/raft v1.3.11 (Consul 1.14) its
// leader check counts followers' answers to requests sent before a stall
// of the leader, and a read served in the first moments after the stall
// could return a value older than writes a new leader had acknowledged
// meanwhile (the chaos suite's pinned reader saw 5 of 1,503 such reads).
// The cost is a raft write per read; the token needs key write on
// "__regent/<Root>/" (which locks need too).
const readBarrierKey = "read-barrier"

// readThroughRaft runs reads (get and get-tree operations) after the
// barrier in one transaction and returns their results; a get of a
// missing key fails the transaction, reported as *txnFailure with
// OpIndex counted among reads.
func (s *Store) readThroughRaft(ctx context.Context, op, key string, reads ...*api.TxnOp) (api.TxnResults, error) {
	ops := make(api.TxnOps, 0, 1+len(reads))
	ops = append(ops, kvOp(api.KVDelete, s.internal+readBarrierKey))
	ops = append(ops, reads...)
	for _, o := range ops {
		o.KV.Namespace, o.KV.Partition = s.cfg.Namespace, s.cfg.Partition
	}
	// The transaction call reports non-2xx, non-409 answers as a bare
	// string: the status comes from the request's trace.
	tctx, st := traceWrite(ctx)
	ok, resp, _, err := s.client.Txn().Txn(ops, s.queryOpts(tctx, false))
	why := fmt.Sprintf(" (a Consistent read is a transaction with a no-op write: the token needs key write on %q)", s.internal)
	if err != nil {
		code := int(st.status.Load())
		if refusal := aclRefusal(err.Error()); refusal != nil {
			return nil, fmt.Errorf("consul: %s %q: %w%s: %w", op, key, refusal, why, err)
		}
		if ctx.Err() == nil && !s.closed.Load() && (code >= 500 || code == http.StatusTooManyRequests) {
			return nil, fmt.Errorf("consul: %s %q: %w: HTTP %d: %w", op, key, kv.ErrNotReachable, code, err)
		}
		return nil, s.translate(ctx, op, key, err)
	}
	if !ok {
		// The barrier's delete is operation 0; the caller's count from 1.
		return nil, rolledBack(op, key, resp, 1, why)
	}
	return resp.Results, nil
}

// getConsistent is Get with ReadOptions.Consistent: nil, nil when the key
// does not exist.
func (s *Store) getConsistent(ctx context.Context, k string) (*api.KVPair, error) {
	res, err := s.readThroughRaft(ctx, "get", k, kvOp(api.KVGet, s.consulKey(k)))
	var f *txnFailure
	switch {
	case errors.As(err, &f) && f.OpIndex == 0:
		return nil, nil // "key ... doesn't exist"
	case err != nil:
		return nil, err
	}
	p := lastKV(res)
	if p == nil {
		// The get succeeded (a missing key fails the transaction), yet
		// Consul left its result out: it filters results the token may not
		// read.
		return nil, fmt.Errorf("consul: get %q: %w: the token may not read the key", k, ErrPermissionDenied)
	}
	return p, nil
}

// listConsistent is list with ReadOptions.Consistent.
func (s *Store) listConsistent(ctx context.Context, prefix string) ([]*api.KVPair, error) {
	res, err := s.readThroughRaft(ctx, "list", prefix, kvOp(api.KVGetTree, s.consulDir(prefix)))
	if err != nil {
		return nil, err
	}
	entries := make([]*api.KVPair, 0, len(res))
	for _, r := range res {
		if r != nil && r.KV != nil {
			entries = append(entries, r.KV)
		}
	}
	return entries, nil
}
