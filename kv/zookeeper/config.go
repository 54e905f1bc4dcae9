package zookeeper

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv/internal/driver"
)

// Defaults for Config fields left zero.
const (
	DefaultSessionTimeout = 10 * time.Second
	DefaultRoot           = "/regent"
	DefaultConnectTimeout = 10 * time.Second
)

// ErrInvalidConfig: New was given a Config it cannot use; the wrapped
// message says which field.
var ErrInvalidConfig = errors.New("zookeeper: invalid config")

// Config configures a Store built by New.
type Config struct {
	// Servers are "host:port" entries; the client tries them in turn and
	// moves to the next one when a server is unreachable. A chroot suffix as
	// in the Java client's connect string ("host:port/app", the same on
	// every entry) is prepended to Root.
	Servers []string

	// SessionTimeout is asked of the server, which clamps it to its own
	// [minSessionTimeout, maxSessionTimeout]. It is how long ephemeral keys
	// (KeepAlive) and locks outlive a client that died. Default 10 s.
	SessionTimeout time.Duration

	// Root is the znode under which every key lives ("/regent" by default).
	// It is created (with its parents) if missing. Several Roots on one
	// ensemble are independent stores. Unlike a chroot in the connect
	// string, Root does not hide the rest of the tree from the connection.
	Root string

	// Auth, "user:password", adds digest credentials to the session and
	// makes every node this Store creates readable and writable by that
	// identity only (ACL digest). Empty: open ACL (world:anyone).
	Auth string

	// ConnectTimeout bounds New's wait for the first session when its ctx
	// has no deadline. Default 10 s.
	ConnectTimeout time.Duration

	// RequestTimeout bounds each call whose ctx has no deadline (default
	// kv.DefaultRequestTimeout, 10 s; negative: no bound): such a call
	// against servers that went away ends with an error matching
	// kv.ErrNotReachable (and kv.ErrOutcomeUnknown for a write) that names
	// this setting, instead of waiting forever. A ctx with a deadline is
	// left alone. Watch, WatchTree, Events and a waiting Lock are not
	// bounded: they last as long as their ctx.
	RequestTimeout time.Duration

	// TLS, when set, is used on every connection (ZooKeeper's secure client
	// port, Netty with TLS, secureClientPort): the server's certificate is
	// checked against TLS.RootCAs (ServerName defaults to the host of each
	// server address), and TLS.Certificates or GetClientCertificate give
	// the client certificate the server asks for. GetClientCertificate is
	// called at each handshake, so a rotated certificate is used from the
	// next reconnect on.
	TLS *tls.Config

	// Dialer, optional, replaces net.DialTimeout, for proxies and tests.
	Dialer zk.Dialer

	// OnKeepAliveLost, optional, is called (from a Store goroutine) when a
	// KeepAlive key could not be re-created after the session expired: the
	// key was taken by another writer or the write failed. Keys that were
	// re-created are only logged.
	OnKeepAliveLost func(key string, err error)

	// Logger receives connection and session events. Default: no-op.
	Logger *zap.Logger
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Servers) == 0 {
		return c, fmt.Errorf("%w: Servers is empty", ErrInvalidConfig)
	}
	servers := make([]string, len(c.Servers))
	chroot := ""
	for i, s := range c.Servers {
		host, suffix, _ := strings.Cut(s, "/")
		if host == "" || strings.ContainsAny(s, " ,") {
			return c, fmt.Errorf("%w: bad server %q: want host:port", ErrInvalidConfig, s)
		}
		if suffix != "" {
			suffix = "/" + strings.TrimSuffix(suffix, "/")
		}
		if i > 0 && suffix != chroot {
			return c, fmt.Errorf("%w: server %q: every entry must have the same chroot (%q)", ErrInvalidConfig, s, chroot)
		}
		servers[i], chroot = host, suffix
	}
	c.Servers = servers
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.SessionTimeout < 0 {
		return c, fmt.Errorf("%w: negative SessionTimeout %v", ErrInvalidConfig, c.SessionTimeout)
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	c.Root = chroot + c.Root
	if !strings.HasPrefix(c.Root, "/") || (len(c.Root) > 1 && strings.HasSuffix(c.Root, "/")) || strings.Contains(c.Root, "//") {
		return c, fmt.Errorf("%w: bad Root %q: want an absolute znode path like /regent", ErrInvalidConfig, c.Root)
	}
	if c.Root == "/" {
		// The root znode holds /zookeeper, which is not ours to list.
		return c, fmt.Errorf(`%w: Root "/" is not allowed: the server's own /zookeeper lives there`, ErrInvalidConfig)
	}
	if c.Auth != "" && !strings.Contains(c.Auth, ":") {
		return c, fmt.Errorf(`%w: Auth must be "user:password"`, ErrInvalidConfig)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

// Format prints c, whatever the verb, with the password of Auth replaced
// (the user stays), so that a Config that ends up in a log line or an
// error message does not carry the secret (the TLS config prints as a
// pointer, its keys never).
func (c Config) Format(f fmt.State, verb rune) {
	type plain Config
	driver.PrintConfig(f, verb, plain(c.redacted()))
}

// MarshalJSON is c printed with %+v, the secret replaced, as a JSON string.
func (c Config) MarshalJSON() ([]byte, error) { return driver.ConfigJSON(c) }

func (c Config) redacted() Config {
	if user, _, ok := strings.Cut(c.Auth, ":"); ok {
		c.Auth = user + ":" + driver.Redacted
	} else if c.Auth != "" {
		c.Auth = driver.Redacted
	}
	return c
}
