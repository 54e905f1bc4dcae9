package workqueue

import (
	"fmt"
	"time"
)

// FastSlowLimiter retries an item quickly for its first attempts, then
// slowly. Its per-item state is bounded like Exponential's (expiry after
// twice the slow delay, at least a minute).
type FastSlowLimiter[T comparable] struct {
	fast, slow time.Duration
	maxFast    int
	table      *failureTable[T]
}

// FastSlow returns a limiter that waits fast for an item's first maxFast
// failures and slow after that. It fails with ErrInvalidLimiter when a delay
// is negative, slow is below fast, or maxFast is negative.
func FastSlow[T comparable](fast, slow time.Duration, maxFast int, opts ...LimiterOption) (*FastSlowLimiter[T], error) {
	if fast < 0 || slow < fast || maxFast < 0 {
		return nil, fmt.Errorf("%w: FastSlow(fast %v, slow %v, maxFast %d): want 0 <= fast <= slow, maxFast >= 0",
			ErrInvalidLimiter, fast, slow, maxFast)
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	return &FastSlowLimiter[T]{fast: fast, slow: slow, maxFast: maxFast, table: newFailureTable[T](o, failureTTL(slow))}, nil
}

// When records a failure of item and returns its delay.
func (f *FastSlowLimiter[T]) When(item T) time.Duration {
	if f.table.record(item) < f.maxFast {
		return f.fast
	}
	return f.slow
}

// Forget drops item's state.
func (f *FastSlowLimiter[T]) Forget(item T) { f.table.forget(item) }

// NumRequeues returns item's failures since it was last forgotten.
func (f *FastSlowLimiter[T]) NumRequeues(item T) int { return f.table.count(item) }

// Tracked returns how many items the limiter holds state for.
func (f *FastSlowLimiter[T]) Tracked() int { return f.table.tracked() }
