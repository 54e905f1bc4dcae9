package workqueue

import (
	"go.uber.org/zap"

	"github.com/regentkv/regent/clock"
)

// Config configures a Queue. The zero value is ready to use: real time, the
// default rate limiter, no metrics, no logging.
type Config[T comparable] struct {
	// Name identifies the queue in log lines. Optional.
	Name string

	// Clock is the source of time for delays, rate limits and metrics.
	// Default: clock.Real(). Tests run in a testing/synctest bubble with
	// the default, or pass a clocktest.Fake where a bubble cannot go.
	Clock clock.Clock

	// RateLimiter decides how long AddRateLimited waits. Default:
	// DefaultRateLimiter, built on Clock.
	RateLimiter RateLimiter[T]

	// Metrics receives the queue's events. Default: none, at no cost on the
	// hot path. If it also implements InFlightBinder, the queue binds its
	// InFlight method to it.
	Metrics Metrics

	// Logger reports misuse that the API has no error return for (Done on
	// an item that is not being processed). Default: zap.NewNop().
	Logger *zap.Logger
}
