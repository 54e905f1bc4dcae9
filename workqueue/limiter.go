package workqueue

import (
	"fmt"
	"time"

	"github.com/regentkv/regent/clock"
)

// RateLimiter is a retry policy: it says how long an item should wait, and
// the queue does the waiting. Implementations are safe for concurrent use.
// The method set is the one of client-go's TypedRateLimiter, so limiters
// port either way.
type RateLimiter[T comparable] interface {
	// When records a failure of item and returns how long to wait before
	// retrying it.
	When(item T) time.Duration
	// Forget drops what the limiter tracks about item (it succeeded).
	Forget(item T)
	// NumRequeues returns the failures recorded for item.
	NumRequeues(item T) int
}

// LimiterOption tunes a rate limiter constructor.
type LimiterOption interface{ apply(*limiterOptions) }

type limiterOptions struct {
	clock      clock.Clock
	maxTracked int
}

type limiterOptionFunc func(*limiterOptions)

func (f limiterOptionFunc) apply(o *limiterOptions) { f(o) }

// WithClock makes the limiter read time from c (default: clock.Real()).
func WithClock(c clock.Clock) LimiterOption {
	return limiterOptionFunc(func(o *limiterOptions) { o.clock = c })
}

// WithMaxTracked caps the number of items a per-item limiter tracks; when
// full, the item that failed least recently is forgotten (its next failure
// counts as its first). Zero, the default, means no cap beyond expiry.
func WithMaxTracked(n int) LimiterOption {
	return limiterOptionFunc(func(o *limiterOptions) { o.maxTracked = n })
}

func buildOptions(opts []LimiterOption) (limiterOptions, error) {
	o := limiterOptions{clock: clock.Real()}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	if o.clock == nil {
		return o, fmt.Errorf("%w: nil clock", ErrInvalidLimiter)
	}
	if o.maxTracked < 0 {
		return o, fmt.Errorf("%w: WithMaxTracked(%d) is negative", ErrInvalidLimiter, o.maxTracked)
	}
	return o, nil
}

// DefaultRateLimiter is client-go's controller default: per-item
// exponential backoff from 5 ms to 1000 s, and an overall token bucket of
// 10 retries per second with a burst of 100; the longer wait wins. It fails
// only on a bad option.
func DefaultRateLimiter[T comparable](opts ...LimiterOption) (RateLimiter[T], error) {
	exp, err := Exponential[T](5*time.Millisecond, 1000*time.Second, opts...)
	if err != nil {
		return nil, err
	}
	bucket, err := Bucket[T](10, 100, opts...)
	if err != nil {
		return nil, err
	}
	return &maxOf[T]{limiters: []RateLimiter[T]{exp, bucket}}, nil
}

// MaxOf combines limiters: an item waits for the longest of their delays,
// its requeue count is the largest of theirs, and Forget reaches all.
func MaxOf[T comparable](limiters ...RateLimiter[T]) (RateLimiter[T], error) {
	if len(limiters) == 0 {
		return nil, fmt.Errorf("%w: MaxOf needs at least one limiter", ErrInvalidLimiter)
	}
	for i, l := range limiters {
		if l == nil {
			return nil, fmt.Errorf("%w: MaxOf limiter %d is nil", ErrInvalidLimiter, i)
		}
	}
	return &maxOf[T]{limiters: append([]RateLimiter[T](nil), limiters...)}, nil
}

type maxOf[T comparable] struct{ limiters []RateLimiter[T] }

func (m *maxOf[T]) When(item T) time.Duration {
	var d time.Duration
	for _, l := range m.limiters {
		d = max(d, l.When(item))
	}
	return d
}

func (m *maxOf[T]) Forget(item T) {
	for _, l := range m.limiters {
		l.Forget(item)
	}
}

func (m *maxOf[T]) NumRequeues(item T) int {
	n := 0
	for _, l := range m.limiters {
		n = max(n, l.NumRequeues(item))
	}
	return n
}
