package etcd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Defaults of Config.
const (
	// DefaultDialTimeout bounds New's first contact with the cluster.
	DefaultDialTimeout = 5 * time.Second
	// DefaultMinTTL is the smallest TTL accepted. etcd silently lengthens
	// any lease shorter than 1.5 election timeouts (1.5 s with the default
	// 1 s election timeout, rounded up to 2 s since leases count whole
	// seconds); refusing such a TTL is more honest than granting a longer
	// one.
	DefaultMinTTL = 2 * time.Second
	// DefaultLockTTL is the lease TTL of a lock whose LockOptions.TTL is
	// zero: how long a lock outlives a holder that died without unlocking.
	DefaultLockTTL = 10 * time.Second
)

// ErrInvalidConfig is matched (errors.Is) by every error of Config.Validate
// and of a Config that New or NewFromClient refuses.
var ErrInvalidConfig = errors.New("etcd: invalid config")

// Config configures New (Endpoints required) and NewFromClient (its
// connection fields empty: they come from the client).
type Config struct {
	// Endpoints are the client URLs of the cluster, e.g.
	// "http://127.0.0.1:2379".
	Endpoints []string
	// TLS, when set, is used for the client connections.
	TLS *tls.Config
	// Username and Password authenticate with etcd's auth; both or neither.
	Username string
	Password string
	// DialTimeout bounds New's first contact with the cluster (default
	// DefaultDialTimeout), within New's ctx.
	DialTimeout time.Duration
	// Root is a key prefix (a kv prefix, e.g. "apps/regent") under which
	// every key of this Store lives: user key "a/b" is stored at
	// "/<Root>/a/b", or "/a/b" when Root is empty.
	Root string
	// MinTTL overrides DefaultMinTTL, for clusters with a shorter election
	// timeout. It must be at least one second (leases count whole seconds).
	MinTTL time.Duration
	// LockTTL overrides DefaultLockTTL for locks whose LockOptions.TTL is
	// zero.
	LockTTL time.Duration
	// Logger receives the driver's logs (lease loss, watch restarts).
	// Default: no logging.
	Logger *zap.Logger
	// RequestTimeout bounds each call whose ctx has no deadline (default
	// kv.DefaultRequestTimeout, 10 s; negative: no bound): such a call
	// against a cluster that went away ends with an error matching
	// kv.ErrNotReachable (and kv.ErrOutcomeUnknown for a write) that names
	// this setting, instead of waiting forever (the etcd client waits for
	// a connection as long as the ctx lets it). A ctx with a deadline is
	// left alone. Watch, WatchTree, Events and a waiting Lock are not
	// bounded: they last as long as their ctx.
	RequestTimeout time.Duration
}

// Validate reports the first problem with c, wrapped in ErrInvalidConfig.
func (c *Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return fmt.Errorf("%w: no Endpoints", ErrInvalidConfig)
	}
	for i, ep := range c.Endpoints {
		if ep == "" {
			return fmt.Errorf("%w: Endpoints[%d] is empty", ErrInvalidConfig, i)
		}
		if err := checkEndpoint(ep); err != nil {
			return fmt.Errorf("%w: Endpoints[%d]: %w", ErrInvalidConfig, i, err)
		}
	}
	if (c.Username == "") != (c.Password == "") {
		return fmt.Errorf("%w: Username and Password go together", ErrInvalidConfig)
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("%w: negative DialTimeout %v", ErrInvalidConfig, c.DialTimeout)
	}
	_, err := c.settings()
	return err
}

// settings are the parts of Config that New and NewFromClient share.
type settings struct {
	root    string // normalised, without slashes at either end
	minTTL  time.Duration
	lockTTL time.Duration
	log     *zap.Logger
	reqTO   time.Duration // see Config.RequestTimeout; 0: the default
}

// settings checks and resolves the Store's own fields of c (not the
// connection's).
func (c *Config) settings() (settings, error) {
	s := settings{minTTL: DefaultMinTTL, lockTTL: DefaultLockTTL, log: zap.NewNop(), reqTO: c.RequestTimeout}
	if c.Root != "" {
		r, err := kv.NormalizePrefix(c.Root)
		if err != nil {
			return s, fmt.Errorf("%w: Root: %w", ErrInvalidConfig, err)
		}
		s.root = r
	}
	switch {
	case c.MinTTL != 0 && c.MinTTL < time.Second:
		return s, fmt.Errorf("%w: MinTTL %v is below one second, etcd's lease granularity", ErrInvalidConfig, c.MinTTL)
	case c.MinTTL != 0:
		s.minTTL = c.MinTTL
	}
	switch {
	case c.LockTTL < 0:
		return s, fmt.Errorf("%w: LockTTL %v is not positive", ErrInvalidConfig, c.LockTTL)
	case c.LockTTL != 0:
		s.lockTTL = c.LockTTL
	}
	if c.Logger != nil {
		s.log = c.Logger
	}
	if s.lockTTL < s.minTTL {
		return s, fmt.Errorf("%w: LockTTL %v is below MinTTL %v", ErrInvalidConfig, s.lockTTL, s.minTTL)
	}
	return s, nil
}

func (c Config) redacted() Config {
	if c.Password != "" {
		c.Password = driver.Redacted
	}
	return c
}

// Format prints c, whatever the verb, with the Password replaced, so
// that a Config that ends up in a log line or an error message does not
// carry the secret (the TLS config prints as a pointer, its keys never).
func (c Config) Format(f fmt.State, verb rune) {
	type plain Config
	driver.PrintConfig(f, verb, plain(c.redacted()))
}

// MarshalJSON is c printed with %+v, the secret replaced, as a JSON string.
func (c Config) MarshalJSON() ([]byte, error) { return driver.ConfigJSON(c) }
