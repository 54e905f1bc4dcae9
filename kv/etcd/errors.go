package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/regentkv/regent/kv"
)

// mapErr is the one place where etcd and gRPC errors become kv sentinels.
// The original error stays in the chain (%w) for callers who need details.
// ctx is the caller's context: when it has ended, its error passes through,
// and a deadline also matches kv.ErrNotReachable, since from here a slow
// server and an absent one look the same.
func (s *Store) mapErr(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := "etcd: " + op
	if key != "" {
		where += fmt.Sprintf(" %q", key)
	}
	if ctx.Err() != nil {
		cerr := kv.CtxErr(ctx) // a RequestTimeoutError says which bound ended it
		if errors.Is(cerr, context.DeadlineExceeded) {
			return fmt.Errorf("%s: %w: %w", where, kv.ErrNotReachable, cerr)
		}
		return fmt.Errorf("%s: %w", where, cerr)
	}
	if s.isClosed() {
		return fmt.Errorf("%s: %w", where, kv.ErrClosed)
	}
	if sentinel := sentinelOf(err); sentinel != nil {
		return fmt.Errorf("%s: %w: %w", where, sentinel, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// mapWriteErr is mapErr for a write: an error that leaves open whether the
// server applied the write (the connection broke or ctx ended while it
// was in flight, a leader failed while committing it) also matches
// kv.ErrOutcomeUnknown. Refusals that the server gave before proposing
// anything, and connections that could not be opened, do not.
func (s *Store) mapWriteErr(ctx context.Context, op, key string, err error, sent *atomic.Bool) error {
	m := s.mapErr(ctx, op, key, err)
	if m == nil || notSent(err) || (sent != nil && !sent.Load()) {
		return m
	}
	if errors.Is(m, kv.ErrNotReachable) || errors.Is(m, context.Canceled) || errors.Is(m, context.DeadlineExceeded) || errors.Is(m, kv.ErrClosed) {
		return kv.UnknownOutcome(m)
	}
	return m
}

// beforeWriteError is an error that happened before the write itself was
// sent (granting its lease): the write cannot have been applied.
type beforeWriteError struct{ err error }

func (e *beforeWriteError) Error() string { return e.err.Error() }
func (e *beforeWriteError) Unwrap() error { return e.err }

// notSent reports whether err says the request was never applied: it
// failed before the write was sent, the server refused it before
// proposing it to raft, or no connection to a server could be made.
func notSent(err error) bool {
	var bw *beforeWriteError
	if errors.As(err, &bw) {
		return true
	}
	e := rpctypes.Error(err)
	switch {
	case errors.Is(e, rpctypes.ErrNoLeader),
		errors.Is(e, rpctypes.ErrNotCapable),
		errors.Is(e, rpctypes.ErrUnhealthy),
		errors.Is(e, rpctypes.ErrTooManyRequests),
		errors.Is(e, rpctypes.ErrRequestTooLarge),
		errors.Is(err, clientv3.ErrNoAvailableEndpoints):
		return true
	}
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable {
		msg := st.Message()
		return strings.Contains(msg, "Error while dialing") || strings.Contains(msg, "connection refused") ||
			strings.Contains(msg, "there is no address available") || strings.Contains(msg, "no connection available")
	}
	return false
}

// sentinelOf returns the kv sentinel err stands for, or nil.
func sentinelOf(err error) error {
	err = rpctypes.Error(err)
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return kv.ErrCompacted
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return kv.ErrValueTooLarge
	case errors.Is(err, rpctypes.ErrKeyNotFound):
		return kv.ErrKeyNotFound
	case errors.Is(err, rpctypes.ErrNoLeader),
		errors.Is(err, rpctypes.ErrLeaderChanged),
		errors.Is(err, rpctypes.ErrNotCapable),
		errors.Is(err, rpctypes.ErrStopped),
		errors.Is(err, rpctypes.ErrTimeout),
		errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost),
		errors.Is(err, rpctypes.ErrUnhealthy),
		errors.Is(err, rpctypes.ErrTooManyRequests):
		return kv.ErrNotReachable
	case errors.Is(err, rpctypes.ErrPermissionDenied), errors.Is(err, rpctypes.ErrPermissionNotGranted),
		errors.Is(err, rpctypes.ErrUserEmpty):
		return kv.ErrPermissionDenied
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrInvalidAuthToken),
		errors.Is(err, rpctypes.ErrAuthOldRevision), errors.Is(err, rpctypes.ErrUserNotFound):
		return kv.ErrAuthFailed
	case errors.Is(err, clientv3.ErrNoAvailableEndpoints):
		return kv.ErrNotReachable
	case errors.Is(err, context.DeadlineExceeded):
		return kv.ErrNotReachable
	}
	var ee rpctypes.EtcdError
	code := codes.OK
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if st, ok := status.FromError(err); ok {
		code = st.Code()
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded:
		return kv.ErrNotReachable
	case codes.ResourceExhausted:
		// gRPC's own message-size limit, before etcd's.
		return kv.ErrValueTooLarge
	}
	return nil
}

// isRetryable reports whether a failed background request (watch re-sync,
// lease re-grant) is worth retrying: the server may come back.
func isRetryable(err error) bool {
	return errors.Is(err, kv.ErrNotReachable)
}
