package driver

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/regentkv/regent/kv"
)

// TTLReads is how many lease or session reads TTLsByHolder keeps in flight.
const TTLReads = 16

// TTLsByHolder builds a kv.TTLReporter answer on backends where a key's
// expiry belongs to what holds it (an etcd lease, a Consul session): one
// read per holder, TTLReads at a time, each bounded by its own
// RequestTimeout so that many holders do not share one bound. read
// reports false for a holder gone (or not one of regent's) since the
// listing: its keys are left out.
func TTLsByHolder[H comparable](ctx context.Context, timeout time.Duration, keys map[H][]string,
	read func(ctx context.Context, h H) (kv.KeyTTL, bool, error)) (map[string]kv.KeyTTL, error) {
	out := map[string]kv.KeyTTL{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(TTLReads)
	for h, ks := range keys {
		g.Go(func() error {
			cctx, done := kv.BoundRequest(gctx, timeout)
			defer done()
			t, ok, err := read(cctx, h)
			if err != nil || !ok {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, k := range ks {
				out[k] = t
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
