package consul

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Defaults of Config. Each is explained on its field.
const (
	DefaultRoot          = "regent"
	DefaultSessionTTLMin = 10 * time.Second
	DefaultLockTTL       = 20 * time.Second
	DefaultWaitTime      = 5 * time.Minute
	DefaultRetryTimeout  = 30 * time.Second
	DefaultCloseTimeout  = 5 * time.Second
	// maxSessionTTL is Consul's upper bound on a session TTL.
	maxSessionTTL = 24 * time.Hour
	// maxTTL is the longest user TTL: its session TTL is half of it.
	maxTTL = 2 * maxSessionTTL
)

// ErrInvalidConfig is matched (errors.Is) by every error Config validation
// returns.
var ErrInvalidConfig = errors.New("consul: invalid config")

// Config configures a Store. The zero value talks to 127.0.0.1:8500 over
// plain HTTP with every default below.
type Config struct {
	// Addresses are the HTTP API endpoints of Consul agents, "host:port",
	// "http://host:port" or "https://host:port", all of one scheme. Requests
	// go to the first that answers; when a connection to it cannot be
	// opened the next is tried (only then: a request that reached a server
	// is never sent twice, so a write is never applied twice). Default
	// "127.0.0.1:8500". Ignored by NewFromClient.
	Addresses []string
	// Token is the ACL token sent with every request. Ignored by
	// NewFromClient. When empty, the consul/api default applies
	// (CONSUL_HTTP_TOKEN).
	Token string
	// TLS, when set, makes the client speak HTTPS with this configuration
	// (root CAs, client certificate, server name). An "https://" address
	// without TLS uses the system roots. Ignored by NewFromClient.
	TLS *tls.Config
	// Datacenter, Namespace and Partition select where keys live; empty
	// means the agent's own datacenter and the default namespace and
	// partition. Namespaces and partitions exist on Consul Enterprise only.
	Datacenter string
	Namespace  string
	Partition  string

	// Root is the Consul key prefix every user key lives under: key "a/b"
	// is stored at "<Root>/a/b". It must be a non-empty valid prefix, so
	// that the driver's internal keys (at "__regent/<Root>/...") can live
	// beside it and never show up in a user listing. Default "regent".
	Root string

	// SessionTTLMin must equal the servers' session_ttl_min (Consul's
	// default 10s). Consul invalidates a session twice its TTL after the
	// last renewal, so a TTL key, KeepAlive session or lock of TTL t gets a
	// session of TTL t/2 (rounded up to the nanosecond), and the smallest
	// TTL accepted is 2 x SessionTTLMin (Store.MinTTL): 20s on a default
	// server. A smaller TTL is a *kv.TTLError up front rather than a server
	// error later. Default DefaultSessionTTLMin.
	SessionTTLMin time.Duration
	// LockTTL is the TTL of a lock whose LockOptions.TTL is zero: how long
	// the lock outlives a holder that died. At least 2 x SessionTTLMin.
	// Default DefaultLockTTL.
	LockTTL time.Duration
	// LockDelay is Consul's lock-delay of lock sessions: after a session is
	// invalidated (not after a clean Unlock) its locks cannot be taken for
	// this long. Regent locks fence with tokens and guarded writes and
	// declare loss before the TTL can expire, so the default is 0 (fast
	// failover); raise it to protect writes that are not fenced.
	LockDelay time.Duration
	// WaitTime bounds one blocking query of a watch; the server adds up to
	// 1/16 jitter. Cancelling a watch never waits for it. Default
	// DefaultWaitTime.
	WaitTime time.Duration
	// RetryTimeout is how long a watch or a lock monitor retries transient
	// errors (server unreachable, 5xx) before giving up with
	// kv.ErrNotReachable. Default DefaultRetryTimeout.
	RetryTimeout time.Duration
	// RequestTimeout bounds each call whose ctx has no deadline (default
	// kv.DefaultRequestTimeout, 10 s; negative: no bound): such a call
	// against agents that went away ends with an error matching
	// kv.ErrNotReachable (and kv.ErrOutcomeUnknown for a write) that names
	// this setting, instead of waiting as long as the HTTP client does. A
	// ctx with a deadline is left alone. Watch, WatchTree, Events and a
	// waiting Lock are not bounded: they last as long as their ctx.
	RequestTimeout time.Duration
	// CloseTimeout bounds the requests Close makes (destroying sessions).
	// Default DefaultCloseTimeout.
	CloseTimeout time.Duration

	// Logger receives retries and background failures. Default zap.NewNop().
	Logger *zap.Logger
}

// resolved is a validated Config with defaults applied.
type resolved struct {
	Config
	scheme string        // "http" or "https"
	hosts  []string      // host:port, without scheme
	minTTL time.Duration // the smallest user TTL: 2 x SessionTTLMin
}

func (c Config) resolve(connection bool) (*resolved, error) {
	r := &resolved{Config: c}
	if r.Root == "" {
		r.Root = DefaultRoot
	}
	root, err := kv.NormalizePrefix(r.Root)
	if err != nil {
		return nil, fmt.Errorf("%w: Root %q: %w", ErrInvalidConfig, c.Root, err)
	}
	if root == "" {
		return nil, fmt.Errorf("%w: Root must not be the store root", ErrInvalidConfig)
	}
	r.Root = root
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"SessionTTLMin", &r.SessionTTLMin, DefaultSessionTTLMin},
		{"LockTTL", &r.LockTTL, DefaultLockTTL},
		{"WaitTime", &r.WaitTime, DefaultWaitTime},
		{"RetryTimeout", &r.RetryTimeout, DefaultRetryTimeout},
		{"CloseTimeout", &r.CloseTimeout, DefaultCloseTimeout},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return nil, fmt.Errorf("%w: %s is negative (%v)", ErrInvalidConfig, d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if r.LockDelay < 0 {
		return nil, fmt.Errorf("%w: LockDelay is negative (%v)", ErrInvalidConfig, r.LockDelay)
	}
	if r.SessionTTLMin > maxSessionTTL {
		return nil, fmt.Errorf("%w: SessionTTLMin %v is above Consul's session maximum %v", ErrInvalidConfig, r.SessionTTLMin, maxSessionTTL)
	}
	r.minTTL = 2 * r.SessionTTLMin
	if r.LockTTL < r.minTTL || r.LockTTL > maxTTL {
		return nil, fmt.Errorf("%w: LockTTL %v is outside [2 x SessionTTLMin = %v, %v]", ErrInvalidConfig, r.LockTTL, r.minTTL, maxTTL)
	}
	if r.Logger == nil {
		r.Logger = zap.NewNop()
	}
	if !connection {
		if len(c.Addresses) > 0 || c.Token != "" || c.TLS != nil {
			return nil, fmt.Errorf("%w: Addresses, Token and TLS come from the *api.Client given to NewFromClient; leave them empty", ErrInvalidConfig)
		}
		return r, nil
	}
	addrs := c.Addresses
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1:8500"}
	}
	for _, a := range addrs {
		scheme, host := "", a
		if i := strings.Index(a, "://"); i >= 0 {
			scheme, host = a[:i], a[i+3:]
			if scheme != "http" && scheme != "https" {
				return nil, fmt.Errorf("%w: address %q: scheme must be http or https", ErrInvalidConfig, a)
			}
		}
		if host == "" || strings.ContainsAny(host, "/?#") {
			return nil, fmt.Errorf("%w: address %q is not host:port", ErrInvalidConfig, a)
		}
		if scheme == "" {
			scheme = "http"
			if c.TLS != nil {
				scheme = "https"
			}
		}
		if c.TLS != nil && scheme == "http" {
			return nil, fmt.Errorf("%w: address %q is http:// but TLS is set", ErrInvalidConfig, a)
		}
		if r.scheme != "" && r.scheme != scheme {
			return nil, fmt.Errorf("%w: addresses mix http and https", ErrInvalidConfig)
		}
		r.scheme = scheme
		r.hosts = append(r.hosts, host)
	}
	return r, nil
}

func (c Config) redacted() Config {
	if c.Token != "" {
		c.Token = driver.Redacted
	}
	return c
}

// Format prints c, whatever the verb, with the Token replaced, so
// that a Config that ends up in a log line or an error message does not
// carry the secret (the TLS config prints as a pointer, its keys never).
func (c Config) Format(f fmt.State, verb rune) {
	type plain Config
	driver.PrintConfig(f, verb, plain(c.redacted()))
}

// MarshalJSON is c printed with %+v, the secret replaced, as a JSON string.
func (c Config) MarshalJSON() ([]byte, error) { return driver.ConfigJSON(c) }
