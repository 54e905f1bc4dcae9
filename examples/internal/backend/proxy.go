package backend

import (
	"io"
	"net"
	"strings"
	"sync"
)

// proxy forwards loopback TCP connections to one server until cut. A cut
// drops every connection and refuses new ones, which is all a server sees
// of a client whose process died: no goodbye, no release.
type proxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	closeOnce sync.Once
}

func newProxy(target string) (*proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		// Dial in the connection's goroutine: a slow server must not hold
		// up other accepts, nor a cut.
		if !p.track(c) {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// track registers c unless the proxy is cut.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *proxy) forward(c net.Conn) {
	defer p.wg.Done()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		p.untrack(c)
		_ = c.Close()
		return
	}
	if !p.track(s) {
		p.untrack(c)
		_ = c.Close()
		_ = s.Close()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(s, c)
	}()
	pipe(c, s)
	<-done
	p.untrack(c, s)
}

// pipe copies src to dst, then closes both so that the other direction
// ends too.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// crash drops every connection and refuses new ones, for good.
func (p *proxy) crash() {
	p.mu.Lock()
	p.cut = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// close cuts the proxy, stops listening and waits for its goroutines.
func (p *proxy) close() {
	p.closeOnce.Do(func() {
		p.crash()
		_ = p.l.Close()
		p.wg.Wait()
	})
}

// splitEndpoint splits "scheme://host:port/suffix" (scheme and suffix
// optional) so that host:port can be replaced by a proxy's address.
func splitEndpoint(ep string) (prefix, hostPort, suffix string) {
	if i := strings.Index(ep, "://"); i >= 0 {
		prefix, ep = ep[:i+3], ep[i+3:]
	}
	if i := strings.Index(ep, "/"); i >= 0 {
		ep, suffix = ep[:i], ep[i:]
	}
	return prefix, ep, suffix
}
