package etcd

import (
	"context"
	"errors"
	"fmt"

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
	if cerr := ctx.Err(); cerr != nil {
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
