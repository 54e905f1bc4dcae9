package consul

import (
	"testing"
	"time"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
)

// link is a proxy whose Cut also drops the client's idle connections: the
// HTTP pool would otherwise hand a write a connection the proxy already
// closed, whose failure after the request was written is (rightly) an
// unknown outcome, while the test wants a write that cannot leave.
type link struct {
	*testenv.Proxy
	s *Store
}

func (l link) Cut() {
	l.Proxy.Cut()
	l.s.transport.base.CloseIdleConnections()
}

func TestWriteOutcomes(t *testing.T) {
	srv := agent(t)
	reader := openStore(t, testConfig(srv.Addr))
	t.Cleanup(func() { _ = reader.Close() })
	kvtest.RunOutcomes(t, kvtest.OutcomeHarness{
		Open: func(t testing.TB) (kv.Store, kvtest.Link) {
			p := testenv.NewProxy(t, srv.Addr)
			cfg := testConfig(p.Addr())
			cfg.RequestTimeout = 2 * time.Second
			s := openStore(t, cfg)
			return s, link{p, s}
		},
		Reader:         reader,
		RequestTimeout: 2 * time.Second,
	})
}
