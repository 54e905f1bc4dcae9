package workqueue

import (
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/regentkv/regent/clock"
)

// BucketLimiter is a token bucket shared by all items: it bounds the overall
// retry rate, whatever the item. It keeps no per-item state.
type BucketLimiter[T comparable] struct {
	limiter *rate.Limiter
	clock   clock.Clock
}

// Bucket returns a token bucket of qps tokens per second holding at most
// burst. It fails with ErrInvalidLimiter unless qps > 0 (math.Inf(1) means
// no limit) and burst >= 1.
func Bucket[T comparable](qps float64, burst int, opts ...LimiterOption) (*BucketLimiter[T], error) {
	if !(qps > 0) || burst < 1 { // !(>) also rejects NaN
		return nil, fmt.Errorf("%w: Bucket(qps %v, burst %d): want qps > 0, burst >= 1", ErrInvalidLimiter, qps, burst)
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	limit := rate.Limit(qps)
	if math.IsInf(qps, 1) {
		limit = rate.Inf
	}
	return &BucketLimiter[T]{limiter: rate.NewLimiter(limit, burst), clock: o.clock}, nil
}

// When takes a token and returns how long until it is available.
func (b *BucketLimiter[T]) When(T) time.Duration {
	now := b.clock.Now()
	return b.limiter.ReserveN(now, 1).DelayFrom(now)
}

// Forget does nothing: the bucket has no per-item state.
func (b *BucketLimiter[T]) Forget(T) {}

// NumRequeues is always 0: the bucket has no per-item state.
func (b *BucketLimiter[T]) NumRequeues(T) int { return 0 }
