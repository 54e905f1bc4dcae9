package testenv

import (
	"sync"
	"testing"

	"github.com/regentkv/regent/kv"
)

// Cutter opens stores each behind a Proxy of its own, so that a test can
// cut one client off its server (a crash or a partition, as the server sees
// it) while the others carry on.
type Cutter struct {
	target string
	dial   func(t testing.TB, addr string) kv.Store

	mu      sync.Mutex
	proxies map[kv.Store]*Proxy
}

// NewCutter returns a Cutter for the server at target (host:port); dial
// opens a store on the address it is given.
func NewCutter(target string, dial func(t testing.TB, addr string) kv.Store) *Cutter {
	return &Cutter{target: target, dial: dial, proxies: map[kv.Store]*Proxy{}}
}

// New opens a store through a new proxy, closed by t.Cleanup.
func (c *Cutter) New(t testing.TB) kv.Store {
	p := NewProxy(t, c.target)
	s := c.dial(t, p.Addr())
	c.mu.Lock()
	c.proxies[s] = p
	c.mu.Unlock()
	return s
}

// Cut drops s's connections and refuses new ones: s stays open but cannot
// reach its server, and the server hears nothing more from it.
func (c *Cutter) Cut(t testing.TB, s kv.Store) {
	c.mu.Lock()
	p := c.proxies[s]
	c.mu.Unlock()
	if p == nil {
		t.Fatalf("testenv: Cut of a store the Cutter did not open")
	}
	p.Cut()
}

// Heal ends Cut's partition for s: it reconnects by itself.
func (c *Cutter) Heal(t testing.TB, s kv.Store) {
	c.mu.Lock()
	p := c.proxies[s]
	c.mu.Unlock()
	if p == nil {
		t.Fatalf("testenv: Heal of a store the Cutter did not open")
	}
	p.Heal()
}
