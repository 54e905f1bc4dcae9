package informertest

import (
	"context"
	"fmt"
	"sync"

	"github.com/regentkv/regent/kv"
)

// gated wraps a store so that a case can cut the informer off from the
// stream while the backend carries on: live streams end with
// kv.ErrNotReachable and new ones are refused until heal. It is how the
// suite makes an informer miss changes on every backend alike.
type gated struct {
	kv.Store
	s kv.Streamer

	mu      sync.Mutex
	down    bool
	cancels map[*context.CancelFunc]struct{}
	wg      sync.WaitGroup
}

var errCut = fmt.Errorf("informertest: stream cut by the test: %w", kv.ErrNotReachable)

func newGated(s kv.Store) *gated {
	return &gated{Store: s, s: s.(kv.Streamer), cancels: make(map[*context.CancelFunc]struct{})}
}

func (g *gated) Snapshot(ctx context.Context, prefix string) (kv.Snapshot, error) {
	g.mu.Lock()
	down := g.down
	g.mu.Unlock()
	if down {
		return kv.Snapshot{}, errCut
	}
	return g.s.Snapshot(ctx, prefix)
}

func (g *gated) Revision(ctx context.Context) (uint64, error) { return g.s.Revision(ctx) }

func (g *gated) Events(ctx context.Context, prefix string, after uint64) (<-chan kv.EventBatch, error) {
	g.mu.Lock()
	if g.down {
		g.mu.Unlock()
		return nil, errCut
	}
	inner, cancel := context.WithCancel(ctx)
	in, err := g.s.Events(inner, prefix, after)
	if err != nil {
		g.mu.Unlock()
		cancel()
		return nil, err
	}
	key := &cancel
	g.cancels[key] = struct{}{}
	g.wg.Add(1)
	g.mu.Unlock()
	out := make(chan kv.EventBatch)
	go func() {
		defer g.wg.Done()
		defer close(out)
		defer func() {
			g.mu.Lock()
			delete(g.cancels, key)
			g.mu.Unlock()
			cancel()
		}()
		for b := range in {
			if inner.Err() != nil {
				// Cut (or the caller gone): the inner stream may still
				// hand over a batch it had in flight, with changes the
				// case made after the cut, which the informer must not
				// see as live ones. cut cancels before it returns, so
				// everything received from here on is dropped.
				continue
			}
			select {
			case out <- b:
			case <-ctx.Done():
			}
		}
		if ctx.Err() == nil && inner.Err() != nil {
			select {
			case out <- kv.EventBatch{Err: errCut}:
			case <-ctx.Done():
			}
		}
	}()
	return out, nil
}

// cut ends every live stream and refuses new ones until heal.
func (g *gated) cut() {
	g.mu.Lock()
	g.down = true
	for c := range g.cancels {
		(*c)()
	}
	g.mu.Unlock()
}

func (g *gated) heal() {
	g.mu.Lock()
	g.down = false
	g.mu.Unlock()
}

// Close waits for the forwarding goroutines; the wrapped store is closed by
// whoever opened it.
func (g *gated) Close() error {
	g.cut()
	g.wg.Wait()
	return nil
}
