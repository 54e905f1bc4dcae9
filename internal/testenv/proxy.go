package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a server until cut: then it drops every
// connection and refuses new ones (its port is closed, so a connect fails
// at once, as to a dead host), which is what a server sees of a client
// whose machine died or was partitioned away. It stands between one client
// and its server, so that a test can cut that client alone.
type Proxy struct {
	addr string // fixed for the proxy's life, across Cut and Heal

	mute atomic.Bool

	mu     sync.Mutex
	l      net.Listener // nil while cut
	target string
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup

	closeOnce sync.Once
}

// NewProxy starts a proxy to target (host:port), closed by tb.Cleanup.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{addr: l.Addr().String(), target: target}
	p.serve(l)
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, to give the client instead of the server's.
func (p *Proxy) Addr() string { return p.addr }

// serve accepts on l until l is closed. Called with p.mu held or before
// the proxy is shared.
func (p *Proxy) serve(l net.Listener) {
	p.l = l
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			target, live := p.target, p.l == l
			p.mu.Unlock()
			if !live {
				_ = c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			if p.l != l {
				p.mu.Unlock()
				_ = c.Close()
				_ = s.Close()
				continue
			}
			p.conns = append(p.conns, c, s)
			p.wg.Add(2)
			p.mu.Unlock()
			go p.pipe(c, s, &p.mute) // server to client: muted by Mute
			go p.pipe(s, c, nil)
		}
	}()
}

func (p *Proxy) pipe(dst, src net.Conn, mute *atomic.Bool) {
	defer p.wg.Done()
	if mute == nil {
		_, _ = io.Copy(dst, src)
	} else {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !mute.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
	}
	_ = dst.Close()
	_ = src.Close()
}

// Mute drops whatever the server sends from now on, on every connection,
// while the client's requests still reach it: a reply lost on the way,
// so the client cannot know whether its request was applied. Cut or Heal
// ends it.
func (p *Proxy) Mute() { p.mute.Store(true) }

// Cut drops every connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	if p.l != nil {
		_ = p.l.Close()
		p.l = nil
	}
	p.mu.Unlock()
	p.drop()
}

// Heal lets new connections through again after Cut, as a partition that
// ends: clients reconnect by themselves. The proxy listens on the same
// address again.
func (p *Proxy) Heal() {
	p.mute.Store(false)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil || p.closed {
		return
	}
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		panic("testenv: proxy cannot listen again on " + p.addr + ": " + err.Error())
	}
	p.serve(l)
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
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.Cut()
		p.wg.Wait()
	})
}
