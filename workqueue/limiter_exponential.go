package workqueue

import (
	"fmt"
	"time"
)

// ExponentialLimiter is a per-item exponential backoff: an item's n-th consecutive
// failure waits base*2^(n-1), capped at max. Its per-item state is dropped on
// Forget, after the item has not failed for twice max (at least a minute),
// and, with WithMaxTracked, when the cap is reached.
type ExponentialLimiter[T comparable] struct {
	base, max time.Duration
	table     *failureTable[T]
}

// Exponential returns a per-item exponential limiter. It fails with
// ErrInvalidLimiter when base is negative or max is below base.
func Exponential[T comparable](base, max time.Duration, opts ...LimiterOption) (*ExponentialLimiter[T], error) {
	if base < 0 || max < base {
		return nil, fmt.Errorf("%w: Exponential(base %v, max %v): want 0 <= base <= max", ErrInvalidLimiter, base, max)
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	return &ExponentialLimiter[T]{base: base, max: max, table: newFailureTable[T](o, failureTTL(max))}, nil
}

// When records a failure of item and returns its backoff.
func (e *ExponentialLimiter[T]) When(item T) time.Duration {
	return backoff(e.base, e.max, e.table.record(item))
}

// backoff is base*2^n capped at max, without overflow.
func backoff(base, max time.Duration, n int) time.Duration {
	if base == 0 {
		return 0
	}
	if n >= 63 || base > max>>uint(n) {
		return max
	}
	return base << uint(n)
}

// Forget drops item's state.
func (e *ExponentialLimiter[T]) Forget(item T) { e.table.forget(item) }

// NumRequeues returns item's failures since it was last forgotten.
func (e *ExponentialLimiter[T]) NumRequeues(item T) int { return e.table.count(item) }

// Tracked returns how many items the limiter holds state for.
func (e *ExponentialLimiter[T]) Tracked() int { return e.table.tracked() }
