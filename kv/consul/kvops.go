package consul

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Put writes value at key. A TTL key is a key locked by a Consul session
// with behaviour "delete": see the package documentation.
func (s *Store) Put(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	k, err := s.checkWrite(ctx, "put", key, value, opts)
	if err != nil {
		return err
	}
	ck := s.consulKey(k)
	if !fitsTxn(ck, value) {
		if opts != nil && opts.TTL > 0 {
			return tooLargeForTxn("put", k, value)
		}
		s.kaKeys.writes.RLock()
		defer s.kaKeys.writes.RUnlock()
		err := s.putLarge(ctx, k, ck, value)
		s.kaKeys.forgetUnlessRefused(ck, err)
		return err
	}
	_, err = s.write(ctx, "put", k, ck, value, opts, nil, true)
	var f *txnFailure
	if errors.As(err, &f) {
		return fmt.Errorf("consul: put %q: %w", k, f)
	}
	return err
}

// Get returns the pair at key.
func (s *Store) Get(ctx context.Context, key string, opts *kv.ReadOptions) (*kv.KVPair, error) {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	k, err := s.checkKey(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	var p *api.KVPair
	if opts != nil && opts.Consistent {
		p, err = s.getConsistent(ctx, k) // see readThroughRaft
	} else {
		p, _, err = s.kv.Get(s.consulKey(k), s.queryOpts(ctx, false))
		err = s.translate(ctx, "get", k, err)
	}
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("consul: get %q: %w", k, kv.ErrKeyNotFound)
	}
	return s.pair(p), nil
}

// Exists reports whether key exists.
func (s *Store) Exists(ctx context.Context, key string, opts *kv.ReadOptions) (bool, error) {
	_, err := s.Get(ctx, key, opts)
	if errors.Is(err, kv.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes key. The existence check and the delete are one
// transaction, so ErrKeyNotFound is exact.
func (s *Store) Delete(ctx context.Context, key string) error {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	k, err := s.checkKey(ctx, "delete", key)
	if err != nil {
		return err
	}
	ck := s.consulKey(k)
	s.kaKeys.writes.RLock()
	defer s.kaKeys.writes.RUnlock()
	_, err = s.txn(ctx, "delete", k, api.TxnOps{kvOp(api.KVGet, ck), kvOp(api.KVDelete, ck)})
	var f *txnFailure
	if err == nil || errors.Is(err, kv.ErrOutcomeUnknown) || (errors.As(err, &f) && f.OpIndex == 0) {
		// Also when the key is already gone (its session lost, say): the
		// caller wants it deleted, so a restore must not bring it back.
		s.kaKeys.forget(ck)
	}
	if errors.As(err, &f) {
		if f.OpIndex == 0 {
			return fmt.Errorf("consul: delete %q: %w", k, kv.ErrKeyNotFound)
		}
		return fmt.Errorf("consul: delete %q: %w", k, f)
	}
	return err
}

// List returns the pairs strictly below prefix, sorted by key.
func (s *Store) List(ctx context.Context, prefix string, opts *kv.ReadOptions) ([]*kv.KVPair, error) {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	p, err := s.checkPrefix(ctx, "list", prefix)
	if err != nil {
		return nil, err
	}
	if opts != nil && opts.Consistent {
		entries, err := s.listConsistent(ctx, p) // see readThroughRaft
		if err != nil {
			return nil, err
		}
		return s.userPairs(entries), nil
	}
	pairs, _, err := s.list(ctx, p, &api.QueryOptions{})
	return pairs, err
}

// list runs one (possibly blocking) list query and returns the user pairs
// and the query's index.
func (s *Store) list(ctx context.Context, prefix string, q *api.QueryOptions) ([]*kv.KVPair, uint64, error) {
	entries, meta, err := s.kv.List(s.consulDir(prefix), q.WithContext(ctx))
	if err != nil {
		return nil, 0, s.translate(ctx, "list", prefix, err)
	}
	if meta.ResultsFilteredByACLs {
		// Consul drops the keys a token may not read from a list and says
		// so only in a header: a partial list would read as deletions (an
		// informer would tombstone the hidden keys).
		return nil, 0, fmt.Errorf("consul: list %q: %w: the token may not read every key under the prefix, and Consul left those out", prefix, ErrPermissionDenied)
	}
	return s.userPairs(entries), meta.LastIndex, nil
}

// userPairs turns the entries of a prefix into its user pairs, sorted.
func (s *Store) userPairs(entries []*api.KVPair) []*kv.KVPair {
	pairs := make([]*kv.KVPair, 0, len(entries))
	for _, e := range entries {
		if _, ok := s.userKey(e.Key); ok {
			pairs = append(pairs, s.pair(e))
		}
	}
	// Consul lists in byte order already; sorting again costs a scan.
	if !slices.IsSortedFunc(pairs, comparePairs) {
		slices.SortFunc(pairs, comparePairs)
	}
	return pairs
}

func comparePairs(a, b *kv.KVPair) int { return strings.Compare(a.Key, b.Key) }

// DeleteTree removes every key strictly below prefix.
func (s *Store) DeleteTree(ctx context.Context, prefix string) error {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	p, err := s.checkPrefix(ctx, "delete tree", prefix)
	if err != nil {
		return err
	}
	s.kaKeys.writes.RLock()
	defer s.kaKeys.writes.RUnlock()
	tctx, st := traceWrite(ctx)
	_, err = s.kv.DeleteTree(s.consulDir(p), s.writeOpts(tctx))
	err = s.writeErr(ctx, "delete tree", p, err, st)
	if err == nil || errors.Is(err, kv.ErrOutcomeUnknown) {
		s.kaKeys.forgetBelow(s.consulDir(p))
	}
	return err
}

// AtomicPut writes value only if key is still at previous. The conditions
// and the write are one transaction whose failing operation tells
// ErrKeyExists, ErrKeyNotFound and ErrKeyModified apart exactly.
func (s *Store) AtomicPut(ctx context.Context, key string, value []byte, previous *kv.KVPair, opts *kv.WriteOptions) (bool, *kv.KVPair, error) {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	k, err := s.checkWrite(ctx, "atomic put", key, value, opts)
	if err != nil {
		return false, nil, err
	}
	ck := s.consulKey(k)
	if !fitsTxn(ck, value) {
		if opts != nil && opts.TTL > 0 {
			return false, nil, tooLargeForTxn("atomic put", k, value)
		}
		s.kaKeys.writes.RLock()
		defer s.kaKeys.writes.RUnlock()
		ok, pair, err := s.atomicPutLarge(ctx, k, ck, value, previous)
		s.kaKeys.forgetUnlessRefused(ck, err)
		return ok, pair, err
	}
	var pre api.TxnOps
	if previous == nil {
		pre = api.TxnOps{kvOp(api.KVCheckNotExists, ck)}
	} else {
		check := kvOp(api.KVCheckIndex, ck)
		check.KV.Index = previous.LastIndex
		pre = api.TxnOps{kvOp(api.KVGet, ck), check}
	}
	res, err := s.write(ctx, "atomic put", k, ck, value, opts, pre, true)
	var f *txnFailure
	if errors.As(err, &f) {
		return false, nil, casError("atomic put", k, previous == nil, f)
	}
	if err != nil {
		return false, nil, err
	}
	return true, &kv.KVPair{Key: k, Value: value, LastIndex: res.ModifyIndex, Revision: res.ModifyIndex}, nil
}

// AtomicDelete removes key only if its LastIndex is previous.LastIndex.
func (s *Store) AtomicDelete(ctx context.Context, key string, previous *kv.KVPair) (bool, error) {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	k, err := s.checkKey(ctx, "atomic delete", key)
	if err != nil {
		return false, err
	}
	if previous == nil {
		return false, fmt.Errorf("consul: atomic delete %q: %w", k, kv.ErrPreviousNotSpecified)
	}
	ck := s.consulKey(k)
	check := kvOp(api.KVCheckIndex, ck)
	check.KV.Index = previous.LastIndex
	s.kaKeys.writes.RLock()
	defer s.kaKeys.writes.RUnlock()
	_, err = s.txn(ctx, "atomic delete", k, api.TxnOps{kvOp(api.KVGet, ck), check, kvOp(api.KVDelete, ck)})
	var f *txnFailure
	if err == nil || errors.Is(err, kv.ErrOutcomeUnknown) || (errors.As(err, &f) && f.OpIndex == 0) {
		s.kaKeys.forget(ck) // deleted, or already gone
	}
	if errors.As(err, &f) {
		return false, casError("atomic delete", k, false, f)
	}
	return err == nil, err
}

// casError maps the failing operation of a compare-and-swap transaction
// built as [check-not-exists] or [get, check-index] + writes.
func casError(op, key string, createOnly bool, f *txnFailure) error {
	switch {
	case createOnly && f.OpIndex == 0:
		return fmt.Errorf("consul: %s %q: %w", op, key, kv.ErrKeyExists)
	case !createOnly && f.OpIndex == 0:
		return fmt.Errorf("consul: %s %q: %w", op, key, kv.ErrKeyNotFound)
	case !createOnly && f.OpIndex == 1:
		return fmt.Errorf("consul: %s %q: %w", op, key, kv.ErrKeyModified)
	}
	return fmt.Errorf("consul: %s %q: %w", op, key, f)
}

// write runs pre followed by the operations that leave ck at value with the
// TTL of opts, and returns the written entry. A KeepAlive session that the
// server invalidated behind our back (it missed renewals) is replaced once.
func (s *Store) write(ctx context.Context, op, k, ck string, value []byte, opts *kv.WriteOptions, pre api.TxnOps, restorable bool) (*api.KVPair, error) {
	s.kaKeys.writes.RLock()
	defer s.kaKeys.writes.RUnlock()
	for attempt := 0; ; attempt++ {
		session, done, err := s.ttlSession(ctx, opts)
		if err != nil {
			return nil, err
		}
		ops := append(slices.Clone(pre), writeOps(ck, value, session)...)
		res, err := s.txn(ctx, op, k, ops)
		var f *txnFailure
		if errors.As(err, &f) && session != "" && f.OpIndex == len(ops)-1 {
			// The lock was refused: the session is gone (a KeepAlive
			// session lost behind the renewer's back: its other keys are
			// restored, and this write moves to a new session), or the key
			// is in someone's lock-delay. Asked before done destroys the
			// session of a plain TTL write.
			var keepAliveTTL time.Duration
			if opts.KeepAlive {
				keepAliveTTL = opts.TTL
			}
			why := s.lockRefused(keepAliveTTL, session, f)
			done(false)
			if opts.KeepAlive && errors.Is(why, errSessionGone) && attempt == 0 {
				continue
			}
			return nil, fmt.Errorf("consul: %s %q: %w", op, k, why)
		}
		// A session whose write may have landed is left to its TTL:
		// destroying it would delete the key it may hold.
		done(err == nil || errors.Is(err, kv.ErrOutcomeUnknown))
		if err != nil {
			if errors.Is(err, kv.ErrOutcomeUnknown) {
				s.kaKeys.forget(ck) // never restore a write that may not have happened
			}
			return nil, err
		}
		p := lastKV(res)
		if p == nil {
			return nil, fmt.Errorf("consul: %s %q: transaction returned no entry", op, k)
		}
		keepAlive := opts != nil && opts.KeepAlive && opts.TTL > 0
		s.kaKeys.note(ck, value, session, restorable && keepAlive)
		return p, nil
	}
}

// putLarge writes a value too large for a transaction with the plain KV
// endpoint. A plain set would keep a TTL session attached to the key, so
// each attempt is conditional: create-only when absent, CAS on the index
// when no session holds it, release of that session otherwise (which sets
// the value and detaches the key in one step). A lost race just retries.
func (s *Store) putLarge(ctx context.Context, k, ck string, value []byte) error {
	for {
		cur, _, err := s.kv.Get(ck, s.queryOpts(ctx, true))
		if err != nil {
			return s.translate(ctx, "put", k, err)
		}
		p := &api.KVPair{Key: ck, Value: value}
		var ok bool
		tctx, st := traceWrite(ctx)
		switch {
		case cur == nil:
			ok, _, err = s.kv.CAS(p, s.writeOpts(tctx))
		case cur.Session == "":
			p.ModifyIndex = cur.ModifyIndex
			ok, _, err = s.kv.CAS(p, s.writeOpts(tctx))
		default:
			p.Session = cur.Session
			ok, _, err = s.kv.Release(p, s.writeOpts(tctx))
		}
		if err != nil {
			return s.writeErr(ctx, "put", k, err, st)
		}
		if ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consul: put %q: %w", k, err)
		}
	}
}

// atomicPutLarge is AtomicPut for a value too large for a transaction: a
// read, then a CAS on the index read. The error kind comes from the read
// (or, when the CAS loses a race, from a read after it), so it describes a
// state just after the failed CAS rather than at it; the answer "not at
// previous" is exact either way.
func (s *Store) atomicPutLarge(ctx context.Context, k, ck string, value []byte, previous *kv.KVPair) (bool, *kv.KVPair, error) {
	cur, _, err := s.kv.Get(ck, s.queryOpts(ctx, true))
	if err != nil {
		return false, nil, s.translate(ctx, "atomic put", k, err)
	}
	if err := compareRead("atomic put", k, cur, previous); err != nil {
		return false, nil, err
	}
	if cur != nil && cur.Session != "" {
		return false, nil, fmt.Errorf("consul: atomic put %q: %w: a value over the transaction limit onto a key with a TTL", k, kv.ErrCallNotSupported)
	}
	p := &api.KVPair{Key: ck, Value: value}
	if cur != nil {
		p.ModifyIndex = cur.ModifyIndex
	}
	tctx, st := traceWrite(ctx)
	ok, _, err := s.kv.CAS(p, s.writeOpts(tctx))
	if err != nil {
		return false, nil, s.writeErr(ctx, "atomic put", k, err, st)
	}
	after, _, err := s.kv.Get(ck, s.queryOpts(ctx, true))
	if !ok {
		if err != nil {
			return false, nil, s.translate(ctx, "atomic put", k, err)
		}
		if err := compareRead("atomic put", k, after, previous); err != nil {
			return false, nil, err
		}
		return false, nil, fmt.Errorf("consul: atomic put %q: %w", k, kv.ErrKeyModified)
	}
	// The CAS applied: that is the answer, whatever the read after it
	// says. The CAS does not return the new index; the read does, when it
	// finds our value. Otherwise (the read failed, or someone wrote since)
	// the pair's index is 0, which no later compare-and-swap matches, as
	// none should against a key that changed since.
	pair := &kv.KVPair{Key: k, Value: value}
	if err == nil && after != nil && bytes.Equal(after.Value, value) {
		pair.LastIndex, pair.Revision = after.ModifyIndex, after.ModifyIndex
	}
	return true, pair, nil
}

func compareRead(op, k string, cur *api.KVPair, previous *kv.KVPair) error {
	switch {
	case previous == nil && cur != nil:
		return fmt.Errorf("consul: %s %q: %w", op, k, kv.ErrKeyExists)
	case previous != nil && cur == nil:
		return fmt.Errorf("consul: %s %q: %w", op, k, kv.ErrKeyNotFound)
	case previous != nil && cur.ModifyIndex != previous.LastIndex:
		return fmt.Errorf("consul: %s %q: %w", op, k, kv.ErrKeyModified)
	}
	return nil
}

func tooLargeForTxn(op, k string, value []byte) error {
	return fmt.Errorf("consul: %s %q: %w: a TTL write is a transaction, limited to %d bytes of request (txn_max_req_len), and this %d-byte value does not fit once base64-encoded",
		op, k, kv.ErrValueTooLarge, txnMaxReqLen, len(value))
}

func (s *Store) checkKey(ctx context.Context, op, key string) (string, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return "", fmt.Errorf("consul: %s: %w", op, err)
	}
	if err := s.usable(ctx); err != nil {
		return "", fmt.Errorf("consul: %s %q: %w", op, k, err)
	}
	return k, nil
}

// usable is the error a call must return before doing anything: the
// caller's ctx has ended, or the Store is closed.
func (s *Store) usable(ctx context.Context) error { return driver.Usable(ctx, s.check()) }

func (s *Store) checkPrefix(ctx context.Context, op, prefix string) (string, error) {
	p, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return "", fmt.Errorf("consul: %s: %w", op, err)
	}
	if err := s.usable(ctx); err != nil {
		return "", fmt.Errorf("consul: %s %q: %w", op, p, err)
	}
	return p, nil
}

// checkWrite checks a write's key, value and options, then the ctx and
// the Store: driver.Usable's one order.
func (s *Store) checkWrite(ctx context.Context, op, key string, value []byte, opts *kv.WriteOptions) (string, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return "", fmt.Errorf("consul: %s: %w", op, err)
	}
	if err := kv.CheckValue(value); err != nil {
		return "", fmt.Errorf("consul: %s %q: %w", op, k, err)
	}
	if err := s.checkTTL(opts); err != nil {
		return "", fmt.Errorf("consul: %s %q: %w", op, k, err)
	}
	if err := s.usable(ctx); err != nil {
		return "", fmt.Errorf("consul: %s %q: %w", op, k, err)
	}
	return k, nil
}

func (s *Store) checkTTL(opts *kv.WriteOptions) error {
	if err := kv.CheckWriteOptions(opts, s.cfg.minTTL); err != nil {
		return err
	}
	if opts != nil && opts.TTL > maxTTL {
		return &kv.TTLError{TTL: opts.TTL, Reason: fmt.Sprintf("above %v, twice Consul's session maximum", maxTTL)}
	}
	return nil
}

// CheckWriteOptions implements kv.OptionsChecker.
func (s *Store) CheckWriteOptions(opts *kv.WriteOptions) error {
	if err := s.checkTTL(opts); err != nil {
		return fmt.Errorf("consul: %w", err)
	}
	return nil
}

var _ kv.OptionsChecker = (*Store)(nil)
