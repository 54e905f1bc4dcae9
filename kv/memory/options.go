package memory

import (
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/clock"
)

// Option configures a Backend (NewBackend) or a self-contained Store (New).
type Option interface {
	apply(*options)
}

type options struct {
	clock            clock.Clock
	logger           *zap.Logger
	historyLimit     int
	progressInterval time.Duration
	lockTTL          time.Duration
}

func defaultOptions() options {
	return options{
		clock:            clock.Real(),
		logger:           zap.NewNop(),
		historyLimit:     DefaultHistoryLimit,
		progressInterval: time.Second,
		lockTTL:          DefaultLockTTL,
	}
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// DefaultHistoryLimit is how many changes a Backend keeps for Events and for
// watchers that fall behind, unless WithHistoryLimit says otherwise.
const DefaultHistoryLimit = 10000

// DefaultLockTTL is how long a lock outlives a killed holder when
// LockOptions.TTL is zero.
const DefaultLockTTL = 15 * time.Second

// WithClock makes TTL expiry and progress notices follow c instead of the
// wall clock, for tests. A nil c keeps the wall clock.
func WithClock(c clock.Clock) Option {
	return optionFunc(func(o *options) {
		if c != nil {
			o.clock = c
		}
	})
}

// WithLogger logs expiries and lock takeovers at debug level. A nil logger
// keeps the default, which discards everything.
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithHistoryLimit bounds the number of changes kept for Events and lagging
// watchers; older ones are compacted away as if by Backend.Compact. Values
// below 1 are raised to 1: the bound is what keeps memory finite.
func WithHistoryLimit(n int) Option {
	return optionFunc(func(o *options) {
		o.historyLimit = max(n, 1)
	})
}

// WithProgressInterval sets how often an idle Events stream gets a progress
// batch (default one second, the contract's maximum). Non-positive values
// keep the default.
func WithProgressInterval(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.progressInterval = d
		}
	})
}
