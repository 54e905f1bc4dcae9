package zookeeper_test

import (
	"testing"
	"time"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
)

func TestWriteOutcomes(t *testing.T) {
	reader := open(t, config(server.Servers(), "/outcomes"))
	kvtest.RunOutcomes(t, kvtest.OutcomeHarness{
		Open: func(t testing.TB) (kv.Store, kvtest.Link) {
			p := testenv.NewProxy(t, server.Addr)
			cfg := config([]string{p.Addr()}, "/outcomes")
			cfg.RequestTimeout = 2 * time.Second
			return open(t.(*testing.T), cfg), p
		},
		Reader:         reader,
		RequestTimeout: 2 * time.Second,
	})
}
