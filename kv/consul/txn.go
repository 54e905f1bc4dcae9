package consul

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// txnMaxReqLen is the default limit of Consul's /v1/txn request body
// (txn_max_req_len, which defaults to kv_max_value_size, 512 KiB). Values go
// base64-encoded in a transaction, so a transaction caps a value near 3/4 of
// this; writes of larger values take the plain KV endpoint instead.
const txnMaxReqLen = 512 * 1024

// fitsTxn reports whether ops holding value under key fit in one txn.
func fitsTxn(key string, value []byte) bool {
	return base64.StdEncoding.EncodedLen(len(value))+4*len(key)+1024 <= txnMaxReqLen
}

// txnFailure is a transaction the server rolled back because operation
// OpIndex did not hold.
type txnFailure struct {
	OpIndex int
	What    string
}

func (e *txnFailure) Error() string {
	return fmt.Sprintf("transaction rolled back at operation %d: %s", e.OpIndex, e.What)
}

// txn runs ops atomically. It returns the KV results of the operations that
// produce one, a *txnFailure when the server rolled back, or a translated
// transport error.
func (s *Store) txn(ctx context.Context, op, key string, ops api.TxnOps) (api.TxnResults, error) {
	for _, o := range ops {
		if o.KV != nil {
			o.KV.Namespace, o.KV.Partition = s.cfg.Namespace, s.cfg.Partition
		}
	}
	tctx, st := traceWrite(ctx)
	ok, resp, _, err := s.client.Txn().Txn(ops, s.queryOpts(tctx, false))
	if err != nil {
		// The txn call reports non-2xx, non-409 answers as a bare string.
		if refusal := aclRefusal(err.Error()); refusal != nil {
			return nil, fmt.Errorf("consul: %s %q: %w: %w", op, key, refusal, err)
		}
		return nil, s.writeErr(ctx, op, key, err, st)
	}
	if !ok {
		return nil, rolledBack(op, key, resp, 0, "")
	}
	return resp.Results, nil
}

// rolledBack is the error of a transaction the server rolled back: a
// typed refusal when an operation's ACL check failed (Consul checks every
// operation's before applying any, so nothing was written), else a
// *txnFailure. skip is how many operations the caller put before its own
// (OpIndex counts from the first of its own); why says what a refused
// token lacks, or "".
func rolledBack(op, key string, resp *api.TxnResponse, skip int, why string) error {
	f := &txnFailure{OpIndex: -1, What: "no reason given"}
	if resp != nil && len(resp.Errors) > 0 {
		f.OpIndex, f.What = resp.Errors[0].OpIndex-skip, resp.Errors[0].What
	}
	if refusal := aclRefusal(f.What); refusal != nil {
		return fmt.Errorf("consul: %s %q: %w%s: %s", op, key, refusal, why, f.What)
	}
	return f
}

// lastKV is the KV entry of the last result that has one.
func lastKV(results api.TxnResults) *api.KVPair {
	for i := len(results) - 1; i >= 0; i-- {
		if results[i] != nil && results[i].KV != nil {
			return results[i].KV
		}
	}
	return nil
}

func kvOp(verb api.KVOp, key string) *api.TxnOp {
	return &api.TxnOp{KV: &api.KVTxnOp{Verb: verb, Key: key}}
}

// writeOps are the operations that leave key at value: a delete first, so
// that a session a TTL write attached earlier is dropped (a plain set keeps
// the key's session, and with it the old expiry), then a set, or a lock by
// session when the key must expire with that session.
func writeOps(key string, value []byte, session string) api.TxnOps {
	w := &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: key, Value: value}}
	if session != "" {
		w.KV.Verb, w.KV.Session = api.KVLock, session
	}
	return api.TxnOps{kvOp(api.KVDelete, key), w}
}
