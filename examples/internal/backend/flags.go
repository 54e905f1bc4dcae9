package backend

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/regentkv/regent/kv/consul"
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
}

// Register adds -backend, -endpoints, -consul-session-ttl-min and
// -zk-session-timeout to fs and returns the Flags they fill once fs is
// parsed.
func Register(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.Backend, "backend", Etcd, "store backend: etcd, consul, zookeeper or memory")
	fs.StringVar(&f.Endpoints, "endpoints", "",
		"comma-separated servers: etcd client URLs, Consul HTTP addresses or ZooKeeper host:port; empty with etcd starts an embedded etcd")
	fs.DurationVar(&f.ConsulSessionTTLMin, "consul-session-ttl-min", consul.DefaultSessionTTLMin,
		"the Consul servers' session_ttl_min; locks need at least twice it")
	fs.DurationVar(&f.ZooKeeperSessionTimeout, "zk-session-timeout", DefaultZooKeeperSessionTimeout,
		"ZooKeeper session timeout: how long a crashed replica's locks outlive it")
	return f
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
