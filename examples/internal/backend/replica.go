package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/consul"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/memory"
	"github.com/regentkv/regent/kv/zookeeper"
)

// Replica is one client of the Cluster, as one process of a replicated
// program would have it.
type Replica struct {
	// Name is the name given to NewReplica.
	Name string
	// Store is this replica's own client: its sessions, leases and locks
	// are not shared with other replicas.
	Store kv.Store

	proxies []*proxy
	mem     *memory.Store // memory backend: Crash is Kill

	crashOnce sync.Once
	crashed   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// NewReplica opens a new client of the cluster, behind proxies of its own
// so that Crash can cut it alone. Cluster.Close closes it; closing it
// earlier is fine.
func (c *Cluster) NewReplica(ctx context.Context, name string) (*Replica, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	r, err := c.open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("backend: replica %s: %w", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = r.Close()
		return nil, ErrClosed
	}
	c.replicas = append(c.replicas, r)
	return r, nil
}

func (c *Cluster) open(ctx context.Context, name string) (*Replica, error) {
	r := &Replica{Name: name}
	if c.memory != nil {
		r.mem = c.memory.Client()
		r.Store = r.mem
		return r, nil
	}
	// Each endpoint gets a proxy of this replica's own.
	eps := make([]string, len(c.eps))
	for i, ep := range c.eps {
		prefix, hostPort, suffix := splitEndpoint(ep)
		p, err := newProxy(hostPort)
		if err != nil {
			r.closeProxies()
			return nil, err
		}
		r.proxies = append(r.proxies, p)
		eps[i] = prefix + p.addr() + suffix
	}
	var err error
	tlsCfg := c.creds.tls // one per cluster: its client certificate reloads for every replica
	switch c.kind {
	case Etcd:
		r.Store, err = etcd.New(ctx, etcd.Config{Endpoints: eps, Root: c.root, TLS: tlsCfg, Username: c.user, Password: c.creds.password})
	case Consul:
		cfg := consul.Config{Addresses: eps, SessionTTLMin: c.consulM, Root: c.root, TLS: tlsCfg, Token: c.creds.token}
		r.Store, err = consul.New(ctx, cfg)
	case ZooKeeper:
		cfg := zookeeper.Config{Servers: eps, SessionTimeout: c.zkTTL, TLS: tlsCfg}
		if c.root != "" {
			cfg.Root = "/" + strings.TrimPrefix(c.root, "/")
		}
		if c.user != "" {
			cfg.Auth = c.user + ":" + c.creds.password
		}
		r.Store, err = zookeeper.New(ctx, cfg)
	}
	if err != nil {
		r.closeProxies()
		return nil, err
	}
	return r, nil
}

// Crash cuts the replica off its servers at once, as if its process died:
// nothing is released gracefully, so its locks and KeepAlive keys expire
// with their TTL (or session timeout) while other replicas carry on. Its
// Store stays open, failing every call, until Close. Idempotent.
func (r *Replica) Crash() {
	r.crashOnce.Do(func() {
		r.crashed.Store(true)
		if r.mem != nil {
			r.mem.Kill()
		}
		for _, p := range r.proxies {
			p.crash()
		}
	})
}

// Close closes the replica's Store (a graceful release, unless it crashed)
// and its proxies. Idempotent. After Crash, the Store's failure to release
// anything is expected and not reported.
func (r *Replica) Close() error {
	r.closeOnce.Do(func() {
		err := r.Store.Close()
		if !r.crashed.Load() {
			r.closeErr = err
		}
		r.closeProxies()
	})
	return r.closeErr
}

func (r *Replica) closeProxies() {
	for _, p := range r.proxies {
		p.close()
	}
}
