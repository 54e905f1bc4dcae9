package consul

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/regentkv/regent/informer/informertest"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
)

// TestInformer runs the informer suite on Consul. Clients reach the agent
// through a proxy, so that the restart case can replace the agent: a -dev
// agent keeps no data, so "restart" is a fresh agent behind the same
// address, and the case checks that the informer notices the index reset,
// re-lists and deletes the lost keys with tombstones.
func TestInformer(t *testing.T) {
	srv := testenv.Consul(t, testenv.ConsulOptions{})
	px := newSwitchProxy(t, srv.Addr)
	informertest.Run(t, informertest.Harness{
		Name: "consul",
		New:  func(t testing.TB) kv.Store { return openStore(t, testConfig(px.addr())) },
		// No history: resuming after a cut may re-list.
		NoHistory: true,
		Compact: func(_ testing.TB, s kv.Store, rev uint64) {
			s.(*Store).Compact(rev)
		},
		Restart: func(t testing.TB) {
			srv.Stop()
			srv = testenv.Consul(t, testenv.ConsulOptions{})
			px.switchTo(srv.Addr)
		},
		RestartLosesData: true,
	})
}

// switchProxy forwards TCP connections to a target that switchTo changes,
// dropping the connections to the old one.
type switchProxy struct {
	l  net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	target string
	conns  []net.Conn
}

func newSwitchProxy(t testing.TB, target string) *switchProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{l: l, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = l.Close()
		p.drop()
		p.wg.Wait()
	})
	return p
}

func (p *switchProxy) addr() string { return p.l.Addr().String() }

func (p *switchProxy) serve() {
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
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *switchProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

func (p *switchProxy) drop() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (p *switchProxy) switchTo(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
	p.drop()
}
