package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
)

// Defaults of Config. A crashed leader is replaced within TTL (plus the
// backend's reaping delay); a leader cut off from its server stops within
// RenewDeadline, before its TTL can have run out on the server.
const (
	DefaultTTL           = 10 * time.Second
	DefaultHealthTimeout = 10 * time.Second
)

// Callbacks are called by Run. Each may be nil.
type Callbacks struct {
	// OnStartedLeading runs in its own goroutine when this candidate becomes
	// leader. Its ctx ends when leadership ends (loss, Resign, or Run's ctx
	// ending) with a cause matching kv.ErrLockLost on loss; it carries the
	// Term (TermFrom) with the fencing token and guarded writes. Run does not
	// lead again, nor return, until it has returned.
	OnStartedLeading func(ctx context.Context)
	// OnStoppedLeading runs each time leadership ends, after the leader's
	// ctx is cancelled; it does not wait for OnStartedLeading to return.
	OnStoppedLeading func()
	// OnNewLeader runs when the observed leader changes to another identity
	// (this candidate's included). Calls are sequential and in order.
	OnNewLeader func(identity string)
}

// Config of an Elector. Key and Identity are required.
type Config struct {
	// Key names the election. The lock lives at Key; the leader record,
	// which Observe and LeaderOf read (and Leader, unless this Elector
	// leads: then it answers from its own term), at Key+"/leader".
	Key string
	// Identity names this candidate (hostname, pod name): unique per
	// candidate, reported by Leader and Observe.
	Identity string
	// TTL bounds the failover time after a leader crashes. Default
	// DefaultTTL; it must be at least the backend's minimum TTL.
	TTL time.Duration
	// RenewDeadline is how long the leader may go without its server
	// confirming leadership before it steps down. Zero: the driver's default
	// (at most 2/3 of TTL). Must be below TTL.
	RenewDeadline time.Duration
	// HealthTimeout is how long OnStartedLeading may keep running after
	// leadership ended before Check reports the leader stuck. Default
	// DefaultHealthTimeout.
	HealthTimeout time.Duration
	// RetryInterval and MaxRetryInterval bound the exponential backoff
	// between failed campaign attempts (server unreachable). Defaults 100ms
	// and 5s.
	RetryInterval, MaxRetryInterval time.Duration

	Callbacks Callbacks
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Metrics, when set, is updated by the Elector; register it with your
	// Prometheus registry yourself.
	Metrics *Metrics
}

// ErrInvalidConfig matches every error New returns for a Config (or store)
// it cannot use. A bad Key also matches kv.ErrInvalidKey, a bad TTL or
// RenewDeadline kv.ErrInvalidTTL.
var ErrInvalidConfig = errors.New("election: invalid config")

func (c *Config) validate() error {
	var errs []error
	k, err := kv.NormalizeKey(c.Key)
	if err != nil {
		errs = append(errs, fmt.Errorf("config Key: %w", err))
	}
	c.Key = k
	if c.Identity == "" {
		errs = append(errs, errors.New("config Identity is required: it is how others see the leader"))
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if err := kv.CheckLockOptions(kv.LockOptions{TTL: c.TTL, RenewDeadline: c.RenewDeadline}); err != nil {
		errs = append(errs, fmt.Errorf("config: %w", err))
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = DefaultHealthTimeout
	}
	if c.HealthTimeout < 0 {
		errs = append(errs, fmt.Errorf("HealthTimeout %v is negative", c.HealthTimeout))
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = 100 * time.Millisecond
	}
	if c.MaxRetryInterval == 0 {
		c.MaxRetryInterval = 5 * time.Second
	}
	if c.RetryInterval < 0 || c.MaxRetryInterval < c.RetryInterval {
		errs = append(errs, fmt.Errorf("RetryInterval %v and MaxRetryInterval %v must be positive and ordered", c.RetryInterval, c.MaxRetryInterval))
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}
