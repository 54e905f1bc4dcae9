package testenv

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
	l, err := listenReserved()
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{addr: l.Addr().String(), target: target}
	p.serve(l)
	tb.Cleanup(p.Close)
	return p
}

// Proxy ports are taken below Linux's ephemeral range (32768 and up by
// default), which the kernel hands to outgoing connections and to
// listeners on port 0: while a proxy is cut its port is closed, and no
// other socket of the test may take it meanwhile, or Heal could not
// listen on it again. Each proxy of the process keeps its port for good.
const (
	reservedLow  = 20000
	reservedHigh = 32000
)

var (
	reservedMu   sync.Mutex
	reservedNext = reservedLow + os.Getpid()%(reservedHigh-reservedLow)
	reservedUsed = map[int]bool{}
)

// listenReserved listens on a free port of the reserved range.
func listenReserved() (net.Listener, error) {
	reservedMu.Lock()
	defer reservedMu.Unlock()
	var last error
	for range reservedHigh - reservedLow {
		port := reservedNext
		reservedNext++
		if reservedNext >= reservedHigh {
			reservedNext = reservedLow
		}
		if reservedUsed[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			last = err // another process has it
			continue
		}
		reservedUsed[port] = true
		return l, nil
	}
	return nil, fmt.Errorf("testenv: no free proxy port in %d-%d: %w", reservedLow, reservedHigh, last)
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
	p.mute.Store(false) // the muted connections are gone
}

// Heal lets new connections through again after Cut, as a partition that
// ends: clients reconnect by themselves. The proxy listens on the same
// address again.
func (p *Proxy) Heal() {
	if p.mute.Swap(false) {
		// Replies were dropped mid-stream: those connections are garbage
		// to the client from now on.
		p.drop()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil || p.closed {
		return
	}
	// The port is reserved for this proxy (see listenReserved); a listen
	// can still fail for a moment while the kernel lets go of it.
	var err error
	for range 100 {
		var l net.Listener
		if l, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(l)
			return
		}
		time.Sleep(10 * time.Millisecond) // retry interval
	}
	panic("testenv: proxy cannot listen again on " + p.addr + ": " + err.Error())
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
