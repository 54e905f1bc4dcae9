package kvurl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/consul"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/memory"
	"github.com/regentkv/regent/kv/zookeeper"
)

// ErrInvalidURL is wrapped by every error about the URL itself.
var ErrInvalidURL = errors.New("kvurl: invalid store URL")

// Backend names a driver.
type Backend string

// The backends a URL can name (its scheme; "zk" is an alias of zookeeper).
const (
	Etcd      Backend = "etcd"
	Consul    Backend = "consul"
	ZooKeeper Backend = "zookeeper"
	Memory    Backend = "memory"
)

// Target is a parsed store URL.
type Target struct {
	Backend Backend
	// Servers are the host:port pairs, in the URL's order.
	Servers []string
	// Root is the Store's root, from the URL's path ("" for the driver's
	// default). For ZooKeeper it is a znode path ("/apps/regent"), for the
	// others a key prefix ("apps/regent").
	Root string
	// User and Password come from the URL's user info: etcd's user,
	// ZooKeeper's digest identity. On Consul the user part is the ACL
	// token.
	User, Password string
	// Name names a memory store ("memory://name"); Options.Memory may
	// share one between Opens.
	Name string
	// Params are the query's parameters, checked by Parse.
	Params url.Values
}

// known lists the query parameters each backend takes.
var known = map[Backend][]string{
	Etcd:      {"tls", "cacert", "cert", "key", "insecure-skip-verify", "dial-timeout", "request-timeout"},
	Consul:    {"tls", "cacert", "cert", "key", "insecure-skip-verify", "request-timeout", "dc", "namespace", "partition"},
	ZooKeeper: {"tls", "cacert", "cert", "key", "insecure-skip-verify", "dial-timeout", "request-timeout", "session-timeout"},
	Memory:    nil,
}

// Parse reads a store URL (see the package doc). Host lists are parsed by
// hand: net/url takes "a:1,b:2" for one host with a bad port.
func Parse(raw string) (*Target, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidURL, redact(raw), fmt.Sprintf(format, args...))
	}
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" {
		return nil, bad("no scheme: want etcd://, consul://, zookeeper:// or memory:")
	}
	t := &Target{Backend: Backend(strings.ToLower(scheme))}
	if t.Backend == "zk" {
		t.Backend = ZooKeeper
	}
	if _, ok := known[t.Backend]; !ok {
		return nil, bad("unknown scheme %q: want etcd, consul, zookeeper or memory", scheme)
	}
	// User info first, up to the last '@': a password may hold '/', '?'
	// or '@' that the rest of the parse would otherwise cut it at (and
	// then show in a message). Keys and roots with an '@' are written
	// %40.
	var info string
	hasInfo := false
	if t.Backend != Memory && strings.HasPrefix(rest, "//") {
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			info, rest, hasInfo = rest[2:at], "//"+rest[at+1:], true
		}
	}
	rest, query, _ := strings.Cut(rest, "?")
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, bad("query: %v", err)
	}
	for p := range params {
		if !contains(known[t.Backend], p) {
			return nil, bad("unknown parameter %q for %s (known: %s)", p, t.Backend, strings.Join(known[t.Backend], ", "))
		}
	}
	t.Params = params
	if t.Backend == Memory {
		t.Name = strings.TrimPrefix(rest, "//")
		if strings.Contains(t.Name, "/") {
			return nil, bad("a memory store has a name, no path")
		}
		return t, nil
	}
	if !strings.HasPrefix(rest, "//") {
		return nil, bad("want %s://host:port", t.Backend)
	}
	authority, path, _ := strings.Cut(rest[2:], "/")
	if hasInfo {
		user, pass, hasPass := strings.Cut(info, ":")
		if t.User, err = url.PathUnescape(user); err != nil {
			return nil, bad("user: a bad %%-escape (write %% as %%25)")
		}
		if hasPass {
			if t.Password, err = url.PathUnescape(pass); err != nil {
				return nil, bad("password: a bad %%-escape (write %% as %%25)")
			}
		}
	}
	if authority == "" {
		return nil, bad("no server")
	}
	for _, hp := range strings.Split(authority, ",") {
		host, port, err := net.SplitHostPort(hp)
		if err != nil || host == "" {
			return nil, bad("server %q: want host:port ([host]:port for IPv6)", hp)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
			return nil, bad("server %q: bad port", hp)
		}
		t.Servers = append(t.Servers, hp)
	}
	if path = strings.TrimRight(path, "/"); path != "" {
		if t.Root, err = url.PathUnescape(path); err != nil {
			return nil, bad("path: a bad %%-escape")
		}
		if t.Backend == ZooKeeper {
			t.Root = "/" + t.Root
		}
	}
	return t, nil
}

// redact hides a URL's password (and a Consul token) in messages: the
// user info is whatever lies between the scheme and the last '@', as
// Parse takes it, however malformed the rest.
func redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok {
		return raw
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return raw
	}
	lead := len(rest) - len(strings.TrimLeft(rest, "/"))
	if at < lead {
		return raw
	}
	info := "***"
	if user, _, hasPass := strings.Cut(rest[lead:at], ":"); !strings.EqualFold(scheme, string(Consul)) {
		info = user
		if hasPass {
			info += ":***"
		}
	}
	return scheme + ":" + rest[:lead] + info + rest[at:]
}

// Redacted is the URL with its password or token replaced by ***, for
// logs and messages.
func Redacted(raw string) string { return redact(raw) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Options fill in what a URL leaves out; the URL's own parts win.
type Options struct {
	// User and Password: etcd's user, ZooKeeper's digest identity.
	User, Password string
	// Token is Consul's ACL token.
	Token string
	// CACert, Cert and Key are PEM files: the CA that signs the servers'
	// certificates, and the client's own pair. Any of them turns TLS on.
	CACert, Cert, Key string
	// TLS, when set, is the TLS configuration itself (the files above
	// then add to a clone of it).
	TLS *tls.Config
	// InsecureSkipVerify skips the servers' certificate check (tests only).
	InsecureSkipVerify bool
	// DialTimeout bounds the first contact (the driver's default when 0).
	DialTimeout time.Duration
	// RequestTimeout bounds each call (the driver's default when 0).
	RequestTimeout time.Duration
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Memory shares memory stores between Opens by name: "memory://a" is
	// a client of Memory["a"] when present. Without it every memory Open
	// is a store of its own.
	Memory map[string]*memory.Backend
}

// Open parses raw and opens the Store it names, within ctx.
func Open(ctx context.Context, raw string, opts *Options) (kv.Store, error) {
	t, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	return t.Open(ctx, opts)
}

// Open opens the Store t names, within ctx.
func (t *Target) Open(ctx context.Context, opts *Options) (kv.Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	user, pass := first(t.User, o.User), first(t.Password, o.Password)
	dial, err := t.duration("dial-timeout", o.DialTimeout)
	if err != nil {
		return nil, err
	}
	request, err := t.duration("request-timeout", o.RequestTimeout)
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if t.Backend != Memory {
		if tlsCfg, err = t.tlsConfig(&o); err != nil {
			return nil, err
		}
	}
	switch t.Backend {
	case Etcd:
		return etcd.New(ctx, etcd.Config{Endpoints: t.Servers, TLS: tlsCfg, Username: user, Password: pass,
			DialTimeout: dial, RequestTimeout: request, Root: t.Root, Logger: o.Logger})
	case Consul:
		token := first(t.User, o.Token)
		return consul.New(ctx, consul.Config{Addresses: t.Servers, Token: token, TLS: tlsCfg, Root: t.Root,
			Datacenter: t.Params.Get("dc"), Namespace: t.Params.Get("namespace"), Partition: t.Params.Get("partition"),
			RequestTimeout: request, Logger: o.Logger})
	case ZooKeeper:
		session, err := t.duration("session-timeout", 0)
		if err != nil {
			return nil, err
		}
		auth := ""
		if user != "" {
			auth = user + ":" + pass
		}
		return zookeeper.New(ctx, zookeeper.Config{Servers: t.Servers, Root: t.Root, Auth: auth, TLS: tlsCfg,
			SessionTimeout: session, ConnectTimeout: dial, RequestTimeout: request, Logger: o.Logger})
	default: // Memory
		if b, ok := o.Memory[t.Name]; ok {
			return b.Client(), nil
		}
		return memory.New(memory.WithLogger(o.Logger)), nil
	}
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (t *Target) duration(param string, fallback time.Duration) (time.Duration, error) {
	v := t.Params.Get(param)
	if v == "" {
		return fallback, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: %s=%q: want a positive duration such as 5s", ErrInvalidURL, param, v)
	}
	return d, nil
}

// tlsConfig builds the TLS configuration from the URL's parameters and o;
// nil when neither asks for TLS.
func (t *Target) tlsConfig(o *Options) (*tls.Config, error) {
	caFile, certFile, keyFile := first(t.Params.Get("cacert"), o.CACert), first(t.Params.Get("cert"), o.Cert), first(t.Params.Get("key"), o.Key)
	insecure := o.InsecureSkipVerify
	if v := t.Params.Get("insecure-skip-verify"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: insecure-skip-verify=%q: want true or false", ErrInvalidURL, v)
		}
		insecure = b
	}
	on := o.TLS != nil || caFile != "" || certFile != "" || keyFile != "" || insecure
	if v := t.Params.Get("tls"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: tls=%q: want true or false", ErrInvalidURL, v)
		}
		if !b {
			// The URL's word wins over Options (a tool's global TLS
			// flags, meant for its other store), not over its own files.
			for _, p := range []string{"cacert", "cert", "key", "insecure-skip-verify"} {
				if t.Params.Get(p) != "" {
					return nil, fmt.Errorf("%w: tls=false with %s in the same URL", ErrInvalidURL, p)
				}
			}
			return nil, nil
		}
		on = true
	}
	if !on {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLS != nil {
		cfg = o.TLS.Clone()
	}
	cfg.InsecureSkipVerify = cfg.InsecureSkipVerify || insecure //nolint:gosec // asked for explicitly, for tests
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("kvurl: CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kvurl: CA certificate %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("kvurl: a client certificate needs both cert and key")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("kvurl: client certificate: %w", err)
		}
		cfg.Certificates = append(cfg.Certificates, pair)
	}
	return cfg, nil
}
