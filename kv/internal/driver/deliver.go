package driver

import (
	"context"
	"slices"
	"time"

	"github.com/regentkv/regent/kv"
)

// CloseGrace is how long a watch or stream goroutine offers its last
// update (kv.ErrClosed after Close, kv.ErrNotReachable after a kill) to a
// reader that is not receiving. Close waits for those goroutines, so the
// offer is bounded: a reader that stopped reading without cancelling its
// ctx must not make Close hang; it sees the channel closed without that
// update.
const CloseGrace = 2 * time.Second

// Send delivers v unless ctx ends first, and reports whether it did.
func Send[T any](ctx context.Context, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// SendLast offers v, the last update before ch closes, until the reader
// takes it, ctx ends, or CloseGrace has passed.
func SendLast[T any](ctx context.Context, ch chan<- T, v T) {
	t := time.NewTimer(CloseGrace)
	defer t.Stop()
	select {
	case ch <- v:
	case <-ctx.Done():
	case <-t.C:
	}
}

// SamePairs reports whether a and b list the same keys at the same
// LastIndex, in the same order: whether a re-read found nothing new.
func SamePairs(a, b []*kv.KVPair) bool {
	return slices.EqualFunc(a, b, func(x, y *kv.KVPair) bool { return x.Key == y.Key && x.LastIndex == y.LastIndex })
}

// Usable is the check every Store call makes once its arguments are
// valid: the caller's ctx first (it has ended: ctx's error), then the
// Store's state (closed: the driver's error, kv.ErrClosed). Every driver
// checks in this one order (kvtest's ChecksInOneOrder), so that a call
// wrong in several ways says the same on every backend.
func Usable(ctx context.Context, closed error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return closed
}
