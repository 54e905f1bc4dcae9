package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a server until cut: then it drops every
// connection and refuses new ones, which is what a server sees of a client
// whose machine died or was partitioned away. It stands between one client
// and its server, so that a test can cut that client alone.
type Proxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
	wg    sync.WaitGroup

	closeOnce sync.Once
}

// NewProxy starts a proxy to target (host:port), closed by tb.Cleanup.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{l: l, target: target}
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, to give the client instead of the server's.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		s, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			_ = s.Close()
			continue
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// Cut drops every connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	p.drop()
}

// Heal lets new connections through again after Cut, as a partition that
// ends: clients reconnect by themselves.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// SwitchTo points the proxy at another server (a restarted one on a new
// port) and drops the connections to the old one, so that clients see a
// server restart at an unchanged address.
func (p *Proxy) SwitchTo(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
	p.drop()
}

func (p *Proxy) drop() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Close cuts and stops the proxy and waits for its goroutines. Idempotent.
func (p *Proxy) Close() {
	p.closeOnce.Do(p.close)
}

func (p *Proxy) close() {
	p.Cut()
	_ = p.l.Close()
	p.wg.Wait()
}
