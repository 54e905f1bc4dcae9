package etcd_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/kvtest"
)

func TestWriteOutcomes(t *testing.T) {
	eps := testenv.Etcd(t)
	u, err := url.Parse(eps[0])
	if err != nil {
		t.Fatal(err)
	}
	reader := newStore(t, eps, etcd.Config{Root: "outcomes"})
	t.Cleanup(func() { _ = reader.Close() })
	kvtest.RunOutcomes(t, kvtest.OutcomeHarness{
		Open: func(t testing.TB) (kv.Store, kvtest.Link) {
			p := testenv.NewProxy(t, u.Host)
			return newStore(t, []string{"http://" + p.Addr()}, etcd.Config{Root: "outcomes", RequestTimeout: 2 * time.Second}), p
		},
		Reader:         reader,
		RequestTimeout: 2 * time.Second,
	})
}
