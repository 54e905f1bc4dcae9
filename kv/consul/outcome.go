package consul

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"

	"github.com/regentkv/regent/kv"
)

// A write's error says whether the server may have applied it
// (kv.ErrOutcomeUnknown): it may, once the request was written to a
// connection and no definite answer came back (the connection broke, the
// caller's ctx ended, the agent answered 5xx: a server may have committed
// it before failing). An httptrace hook on the write's ctx records whether
// the request was written; the Store's transport records the status code,
// which consul/api drops from transaction errors.

// sendState is what one write's request went through.
type sendState struct {
	wrote  atomic.Bool  // the request was written to a connection
	status atomic.Int32 // the last HTTP status the agent answered, if any
}

type sendStateKey struct{}

// traceWrite returns ctx set up to record s's request, and the record.
func traceWrite(ctx context.Context) (context.Context, *sendState) {
	st := new(sendState)
	ctx = context.WithValue(ctx, sendStateKey{}, st)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				st.wrote.Store(true)
			}
		},
	}), st
}

// recordStatus is called by the Store's transport with each response.
func recordStatus(req *http.Request, resp *http.Response) {
	if st, ok := req.Context().Value(sendStateKey{}).(*sendState); ok {
		st.status.Store(int32(resp.StatusCode))
	}
}

// writeErr is translate for a write: 5xx and 429 answers (which the txn
// endpoint reports as bare strings) become kv.ErrNotReachable, and a write
// that may have been applied also matches kv.ErrOutcomeUnknown.
func (s *Store) writeErr(ctx context.Context, op, key string, err error, st *sendState) error {
	if err == nil {
		return nil
	}
	code := int(st.status.Load())
	var m error
	switch {
	case ctx.Err() != nil || s.closed.Load():
		m = s.translate(ctx, op, key, err)
	case code >= 500 || code == http.StatusTooManyRequests:
		m = fmt.Errorf("consul: %s %q: %w: HTTP %d: %w", op, key, kv.ErrNotReachable, code, err)
	default:
		m = s.translate(ctx, op, key, err)
	}
	// A request that ends in a dial error was never written: net/http
	// tries it again on a new connection only when nothing of it was
	// written on the old one (WroteRequest fires before the buffered
	// request is flushed, so it may have fired for that attempt anyway).
	if !st.wrote.Load() || isDialError(err) || !maybeApplied(m, code, err) {
		return m
	}
	return kv.UnknownOutcome(m)
}

// maybeApplied reports whether a written request that failed with m may
// have been applied.
func maybeApplied(m error, code int, raw error) bool {
	switch {
	case code >= 200 && code < 300:
		return true // answered, but the answer could not be read
	case code == http.StatusTooManyRequests:
		return false // refused before it was looked at
	case code >= 500:
		// Refusals before anything reached raft.
		msg := raw.Error()
		return !strings.Contains(msg, "No cluster leader") && !strings.Contains(msg, "rpc error getting client")
	case code >= 400:
		return false // refused
	}
	return errors.Is(m, kv.ErrNotReachable) || errors.Is(m, context.Canceled) ||
		errors.Is(m, context.DeadlineExceeded) || errors.Is(m, kv.ErrClosed)
}
