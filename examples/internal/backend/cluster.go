package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/etcd/embedded"
	"github.com/regentkv/regent/kv/memory"
)

var (
	// ErrNotEmbedded is returned by StopServer and StartServer on a
	// Cluster whose server this process does not run.
	ErrNotEmbedded = errors.New("backend: no embedded server to stop or start")
	// ErrClosed is returned by NewReplica after Close.
	ErrClosed = errors.New("backend: cluster closed")
)

// Cluster is an opened backend: the servers every Replica talks to.
type Cluster struct {
	kind    string
	eps     []string
	server  *embedded.Server // the embedded etcd, if we started one
	memory  *memory.Backend  // the memory backend, if that is the kind
	minTTL  time.Duration
	zkTTL   time.Duration
	consulM time.Duration
	root    string
	creds   credentials
	user    string

	mu       sync.Mutex
	closed   bool
	replicas []*Replica
}

// Open checks the flags and opens the backend: with -backend etcd and no
// -endpoints it starts an embedded etcd (Close stops it). It contacts no
// external server: the first NewReplica does.
func (f *Flags) Open(ctx context.Context) (*Cluster, error) {
	eps, err := f.endpoints()
	if err != nil {
		return nil, err
	}
	creds, err := f.readCredentials()
	if err != nil {
		return nil, err
	}
	c := &Cluster{kind: f.Backend, eps: eps, zkTTL: f.ZooKeeperSessionTimeout, consulM: f.ConsulSessionTTLMin,
		root: f.Root, creds: creds, user: f.User}
	if creds.tls != nil && creds.tls.ServerName == "" && len(eps) > 0 {
		_, hostPort, _ := splitEndpoint(eps[0])
		if host, _, err := net.SplitHostPort(hostPort); err == nil {
			creds.tls.ServerName = host
		}
	}
	switch f.Backend {
	case Memory:
		c.memory = memory.NewBackend()
		// Memory TTLs are exact to the millisecond; a second keeps the
		// demos' timelines readable.
		c.minTTL = time.Second
	case Etcd:
		c.minTTL = etcd.DefaultMinTTL
		if len(eps) == 0 && (creds.tls != nil || f.User != "") {
			return nil, fmt.Errorf("%w: the embedded etcd runs without TLS or users: give -endpoints for -tls-* and -user", ErrInvalidFlags)
		}
		if len(eps) == 0 {
			srv, err := embedded.Start(ctx)
			if err != nil {
				return nil, fmt.Errorf("backend: start embedded etcd: %w", err)
			}
			c.server, c.eps = srv, srv.Endpoints()
		}
	case Consul:
		if c.consulM == 0 {
			c.consulM = 10 * time.Second
		}
		c.minTTL = 2 * c.consulM
	case ZooKeeper:
		if c.zkTTL == 0 {
			c.zkTTL = DefaultZooKeeperSessionTimeout
		}
		c.minTTL = c.zkTTL
	}
	return c, nil
}

// Kind is the backend's name: etcd, consul, zookeeper or memory.
func (c *Cluster) Kind() string { return c.kind }

// Describe says in one line what the replicas talk to.
func (c *Cluster) Describe() string {
	switch {
	case c.memory != nil:
		return "backend: in-process memory store"
	case c.server != nil:
		return "backend: embedded etcd at " + strings.Join(c.eps, ",") + " (in this process, no installs)"
	default:
		return "backend: " + c.kind + " at " + strings.Join(c.eps, ",")
	}
}

// MinTTL is the smallest lock or election TTL the backend honours: etcd's
// DefaultMinTTL (2 s), twice Consul's session_ttl_min, the ZooKeeper
// session timeout (a lock lives as long as its session), one second on
// memory.
func (c *Cluster) MinTTL() time.Duration { return c.minTTL }

// Embedded reports whether this process runs the server, so that
// StopServer and StartServer work.
func (c *Cluster) Embedded() bool { return c.server != nil }

// StopServer stops the embedded etcd: every replica loses its server until
// StartServer.
func (c *Cluster) StopServer() error {
	if c.server == nil {
		return fmt.Errorf("%w: backend %s at %s", ErrNotEmbedded, c.kind, strings.Join(c.eps, ","))
	}
	c.server.Stop()
	return nil
}

// StartServer restarts the embedded etcd stopped by StopServer, on the same
// ports and data: replicas reconnect by themselves.
func (c *Cluster) StartServer(ctx context.Context) error {
	if c.server == nil {
		return fmt.Errorf("%w: backend %s at %s", ErrNotEmbedded, c.kind, strings.Join(c.eps, ","))
	}
	if err := c.server.Restart(ctx); err != nil {
		return fmt.Errorf("backend: restart embedded etcd: %w", err)
	}
	return nil
}

// Close closes every replica, then stops the embedded server or memory
// backend. It is idempotent.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	replicas := c.replicas
	c.replicas = nil
	c.mu.Unlock()

	var errs []error
	// Replicas close in parallel: a crashed one may spend the driver's
	// close timeout failing to reach its server.
	var wg sync.WaitGroup
	errc := make(chan error, len(replicas))
	for _, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- r.Close()
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		errs = append(errs, err)
	}
	if c.server != nil {
		errs = append(errs, c.server.Close())
	}
	if c.memory != nil {
		c.memory.Close()
	}
	return errors.Join(errs...)
}
