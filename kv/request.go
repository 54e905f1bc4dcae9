package kv

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultRequestTimeout is the drivers' default Config.RequestTimeout: the
// bound of a store call whose ctx has no deadline.
const DefaultRequestTimeout = 10 * time.Second

// BoundRequest gives a call whose ctx has no deadline one of d, so that a
// call made with context.Background() against a server that went away
// ends (with an error matching ErrNotReachable and
// context.DeadlineExceeded that says so) instead of waiting forever. A ctx
// that has a deadline is the caller's choice and is left alone, as is
// every ctx when d is negative. Drivers call it on entry to each call but
// Watch, WatchTree, Events and a waiting Lock, which last as long as their
// ctx by design.
func BoundRequest(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d < 0 {
		return ctx, func() {}
	}
	if d == 0 {
		d = DefaultRequestTimeout
	}
	return context.WithTimeoutCause(ctx, d, &RequestTimeoutError{Timeout: d})
}

// RequestTimeoutError is the cause of a call that BoundRequest ended. It
// matches ErrNotReachable and context.DeadlineExceeded.
type RequestTimeoutError struct{ Timeout time.Duration }

func (e *RequestTimeoutError) Error() string {
	return fmt.Sprintf("kv: no answer within the store's RequestTimeout (%v), applied because the call's ctx had no deadline: %v",
		e.Timeout, ErrNotReachable)
}

// Is makes errors.Is match ErrNotReachable and context.DeadlineExceeded.
func (e *RequestTimeoutError) Is(target error) bool {
	return target == ErrNotReachable || target == context.DeadlineExceeded
}

// CtxErr is ctx's error as a driver reports it: the RequestTimeoutError
// when BoundRequest's bound ended it, else ctx.Err() (a caller's own cause
// is not put in its place: errors.Is(err, context.Canceled) must hold).
func CtxErr(ctx context.Context) error {
	var rt *RequestTimeoutError
	if cause := context.Cause(ctx); errors.As(cause, &rt) {
		return cause
	}
	return ctx.Err()
}
