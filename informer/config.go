package informer

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/clock"
	"github.com/regentkv/regent/kv"
)

// Defaults of Config.
const (
	// DefaultHandlerQueueSize bounds each handler's queue of pending
	// notifications; past it the handler catches up from the cache.
	DefaultHandlerQueueSize = 1024
	// DefaultBackoffInitial and DefaultBackoffMax bound the exponential
	// backoff between failed list or stream attempts (client-go's values).
	DefaultBackoffInitial = 800 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	// DefaultStaleAfter is Config.StaleAfter's default: ten missed progress
	// notices.
	DefaultStaleAfter = 10 * time.Second
	// resyncJitter is the largest extra fraction of ResyncPeriod added to
	// each period, so that informers started together do not resync in step.
	resyncJitter = 0.1
)

// IndexFunc returns the values under which obj is indexed. An error is
// reported (Config.OnError, wrapped in ErrIndex) and the object is left out
// of that index; it is still cached.
type IndexFunc[T any] func(key string, obj T) ([]string, error)

// Backoff bounds the exponential backoff between failed attempts to list or
// to resume the stream. A successful batch resets it.
type Backoff struct {
	Initial time.Duration // default DefaultBackoffInitial
	Max     time.Duration // default DefaultBackoffMax
}

// Config of an Informer. Decode is required.
type Config[T any] struct {
	// Name labels logs and metrics. Default: the prefix ("/" for the root).
	Name string
	// Prefix is the directory followed: every key strictly below it.
	Prefix string
	// Decode turns a stored value into a T. A failure is reported and the
	// key is treated as absent (see the package doc).
	Decode func(key string, value []byte) (T, error)
	// KeepLastGood keeps a key's cached object when a new value of it
	// fails to decode (or transform), instead of treating the key as
	// absent (OnDelete, Get misses): what a config reader wants, so that a
	// bad push does not take its last good config away. The failure is
	// reported as usual (OnError, the decode error metric, a log line),
	// and Check fails with an error wrapping ErrDecode that names the keys
	// until each decodes again or is deleted. A key whose first value
	// fails to decode has no last good object: it stays absent.
	KeepLastGood bool
	// Transform, optional, rewrites a decoded object before it is cached
	// (drop fields you do not need to save memory). An error is handled as
	// a decode error.
	Transform func(key string, obj T) (T, error)
	// ResyncPeriod, when positive, replays the cache to every handler as
	// OnUpdate(old == new) each period plus up to 10% jitter. It never
	// reads the server.
	ResyncPeriod time.Duration
	// Indexers names the secondary indexes of the cache.
	Indexers map[string]IndexFunc[T]
	// HandlerQueueSize bounds each handler's queue. Default
	// DefaultHandlerQueueSize.
	HandlerQueueSize int
	// Backoff between failed attempts; zero fields take the defaults.
	Backoff Backoff
	// OnError, optional, is called with every decode, transform and index
	// error (wrapping ErrDecode or ErrIndex), from the informer's goroutine:
	// it must not block.
	OnError func(key string, err error)
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Metrics, when set, is updated by the informer; register it with your
	// Prometheus registry yourself.
	Metrics *Metrics
	// StaleAfter is how long the informer may go without hearing from the
	// store (a change or a progress notice, which every driver sends at
	// least once a second while idle) before Check reports the cache stale.
	// Default DefaultStaleAfter. On a store without kv.Streamer only stream
	// errors make the cache stale: WatchTree sends no progress notices.
	StaleAfter time.Duration
	// Clock drives backoff and resync timers. Default: real time.
	Clock clock.Clock
}

func (c *Config[T]) validate() error {
	p, err := kv.NormalizePrefix(c.Prefix)
	if err != nil {
		return fmt.Errorf("%w: Prefix: %w", ErrInvalidConfig, err)
	}
	c.Prefix = p
	if c.Decode == nil {
		return fmt.Errorf("%w: Decode is required", ErrInvalidConfig)
	}
	if c.ResyncPeriod < 0 {
		return fmt.Errorf("%w: ResyncPeriod %v is negative", ErrInvalidConfig, c.ResyncPeriod)
	}
	if c.HandlerQueueSize < 0 {
		return fmt.Errorf("%w: HandlerQueueSize %d is negative", ErrInvalidConfig, c.HandlerQueueSize)
	}
	if c.HandlerQueueSize == 0 {
		c.HandlerQueueSize = DefaultHandlerQueueSize
	}
	for name, f := range c.Indexers {
		if name == "" || f == nil {
			return fmt.Errorf("%w: Indexers: index %q needs a name and a function", ErrInvalidConfig, name)
		}
	}
	if c.Backoff.Initial < 0 || c.Backoff.Max < 0 {
		return fmt.Errorf("%w: Backoff %+v has a negative bound", ErrInvalidConfig, c.Backoff)
	}
	if c.Backoff.Initial == 0 {
		c.Backoff.Initial = DefaultBackoffInitial
	}
	if c.Backoff.Max == 0 {
		c.Backoff.Max = max(DefaultBackoffMax, c.Backoff.Initial)
	}
	if c.Backoff.Max < c.Backoff.Initial {
		return fmt.Errorf("%w: Backoff.Max %v is below Backoff.Initial %v", ErrInvalidConfig, c.Backoff.Max, c.Backoff.Initial)
	}
	if c.StaleAfter < 0 {
		return fmt.Errorf("%w: StaleAfter %v is negative", ErrInvalidConfig, c.StaleAfter)
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.Name == "" {
		c.Name = "/" + c.Prefix
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	return nil
}
