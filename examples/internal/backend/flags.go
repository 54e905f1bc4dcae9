package backend

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/regentkv/regent/kv/consul"
	"github.com/regentkv/regent/kv/kvurl"
)

// Backend names accepted by -backend.
const (
	Etcd      = "etcd"
	Consul    = "consul"
	ZooKeeper = "zookeeper"
	Memory    = "memory"
)

// DefaultZooKeeperSessionTimeout is the session timeout replicas ask of a
// ZooKeeper server: how long a crashed replica's locks outlive it. 4 s is
// the smallest a default server (tickTime 2 s) grants.
const DefaultZooKeeperSessionTimeout = 4 * time.Second

// ErrInvalidFlags matches every error about the flags' values.
var ErrInvalidFlags = errors.New("backend: invalid flags")

// Flags are the examples' backend settings. Register fills them from the
// command line; tests may fill them directly.
type Flags struct {
	// Backend is etcd, consul, zookeeper or memory.
	Backend string
	// Endpoints, comma-separated: etcd client URLs, Consul HTTP addresses
	// or ZooKeeper host:port entries. Empty with etcd starts an embedded
	// server; consul and zookeeper need it.
	Endpoints string
	// ConsulSessionTTLMin must equal the Consul servers' session_ttl_min
	// (Consul's default 10 s): the smallest lock TTL is twice it.
	ConsulSessionTTLMin time.Duration
	// ZooKeeperSessionTimeout is asked of the ZooKeeper server, which
	// clamps it to its own bounds.
	ZooKeeperSessionTimeout time.Duration

	// Root is the Store root of every replica: the key prefix (ZooKeeper:
	// the znode) an operator's grant covers. Empty: the driver's default.
	Root string
	// TLSCA, TLSCert and TLSKey are PEM files: the CA that signed the
	// servers' certificates, and the client certificate and its key. The
	// certificate pair is read again when it changes on disk, so a rotated
	// certificate is used from the next connection on.
	TLSCA, TLSCert, TLSKey string
	// TLSServerName is the name the servers' certificates must carry.
	// Replicas reach the servers through proxies of their own (so that a
	// demo can crash one), so the name cannot come from the address they
	// dial: default, the host of the first endpoint.
	TLSServerName string
	// User is the etcd user, or the ZooKeeper digest identity's user;
	// its password comes from PasswordFile, else $REGENT_PASSWORD.
	User, PasswordFile string
	// TokenFile holds the Consul ACL token; default, the Consul client's
	// CONSUL_HTTP_TOKEN.
	TokenFile string
}

// Register adds -backend, -endpoints, -consul-session-ttl-min,
// -zk-session-timeout, -root, the TLS flags (-tls-ca, -tls-cert, -tls-key,
// -tls-server-name) and the credential flags (-user, -password-file,
// -token-file) to fs and returns the Flags they fill once fs is parsed.
func Register(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.Backend, "backend", Etcd, "store backend: etcd, consul, zookeeper or memory")
	fs.StringVar(&f.Endpoints, "endpoints", "",
		"comma-separated servers: etcd client URLs, Consul HTTP addresses or ZooKeeper host:port; empty with etcd starts an embedded etcd")
	fs.DurationVar(&f.ConsulSessionTTLMin, "consul-session-ttl-min", consul.DefaultSessionTTLMin,
		"the Consul servers' session_ttl_min; locks need at least twice it")
	fs.DurationVar(&f.ZooKeeperSessionTimeout, "zk-session-timeout", DefaultZooKeeperSessionTimeout,
		"ZooKeeper session timeout: how long a crashed replica's locks outlive it")
	fs.StringVar(&f.Root, "root", "", "the Store root (key prefix, or ZooKeeper znode) the credentials are granted; empty: the driver's default")
	fs.StringVar(&f.TLSCA, "tls-ca", "", "PEM file of the CA that signed the servers' certificates (turns TLS on)")
	fs.StringVar(&f.TLSCert, "tls-cert", "", "PEM file of the client certificate, re-read when it changes (turns TLS on; needs -tls-key)")
	fs.StringVar(&f.TLSKey, "tls-key", "", "PEM file of the client certificate's key")
	fs.StringVar(&f.TLSServerName, "tls-server-name", "", "name the servers' certificates carry; default: the host of the first endpoint")
	fs.StringVar(&f.User, "user", "", "etcd user, or ZooKeeper digest user; the password comes from -password-file or $"+PasswordEnv)
	fs.StringVar(&f.PasswordFile, "password-file", "", "file holding -user's password (never pass a secret on the command line)")
	fs.StringVar(&f.TokenFile, "token-file", "", "file holding the Consul ACL token; default: $CONSUL_HTTP_TOKEN")
	fs.Func("store", "the store as one URL, as the regent CLI takes it (etcd://host:2379/root, consul://host:8500, zookeeper://host:2181/root, memory:): sets -backend, -endpoints, -root, -user and the TLS files; secrets stay in -password-file and -token-file",
		f.setStore)
	return f
}

// setStore fills the flags from a store URL (package kvurl). Secrets in
// the URL are refused, as on the rest of the command line.
func (f *Flags) setStore(raw string) error {
	t, err := kvurl.Parse(raw)
	if err != nil {
		return err
	}
	if t.Password != "" || (t.Backend == kvurl.Consul && t.User != "") {
		return fmt.Errorf("%w: -store carries a secret: put the password in -password-file (or $%s), the Consul token in -token-file", ErrInvalidFlags, PasswordEnv)
	}
	for p := range t.Params {
		switch p {
		case "cacert":
			f.TLSCA = t.Params.Get(p)
		case "cert":
			f.TLSCert = t.Params.Get(p)
		case "key":
			f.TLSKey = t.Params.Get(p)
		default:
			return fmt.Errorf("%w: -store parameter %q is not one the examples take (cacert, cert, key)", ErrInvalidFlags, p)
		}
	}
	f.Backend, f.Endpoints, f.Root, f.User = string(t.Backend), strings.Join(t.Servers, ","), t.Root, t.User
	return nil
}

// endpoints splits Endpoints and checks them against Backend.
func (f *Flags) endpoints() ([]string, error) {
	var eps []string
	for _, ep := range strings.Split(f.Endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	switch f.Backend {
	case Etcd, Memory:
	case Consul:
		if len(eps) == 0 {
			return nil, fmt.Errorf("%w: -backend consul needs -endpoints with the agents' HTTP addresses, e.g. -endpoints 127.0.0.1:8500", ErrInvalidFlags)
		}
	case ZooKeeper:
		if len(eps) == 0 {
			return nil, fmt.Errorf("%w: -backend zookeeper needs -endpoints with the servers, e.g. -endpoints 127.0.0.1:2181", ErrInvalidFlags)
		}
	default:
		return nil, fmt.Errorf("%w: unknown -backend %q: want etcd, consul, zookeeper or memory", ErrInvalidFlags, f.Backend)
	}
	if f.Backend == Memory && len(eps) > 0 {
		return nil, fmt.Errorf("%w: -backend memory is in-process and takes no -endpoints", ErrInvalidFlags)
	}
	if f.ConsulSessionTTLMin < 0 || f.ZooKeeperSessionTimeout < 0 {
		return nil, fmt.Errorf("%w: negative -consul-session-ttl-min or -zk-session-timeout", ErrInvalidFlags)
	}
	return eps, nil
}
