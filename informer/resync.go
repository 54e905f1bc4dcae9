package informer

import (
	"context"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
)

// resyncLoop replays the cache to every handler each period (plus jitter).
// It reads the cache only: a resync storm costs handler time, never server
// load.
func (inf *Informer[T]) resyncLoop(ctx context.Context) {
	defer inf.wg.Done()
	for {
		p := inf.cfg.ResyncPeriod
		d := p + time.Duration(rand.Float64()*resyncJitter*float64(p))
		if inf.sleep(ctx, d) != nil {
			return
		}
		inf.resync()
	}
}

// resync marks a resync due for every handler; each serves it from its own
// goroutine once its queue has drained (see catchUp), so a resync never
// overflows a queue and costs the informer O(handlers).
func (inf *Informer[T]) resync() {
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	if !inf.synced {
		return
	}
	for _, r := range inf.handlers {
		r.mu.Lock()
		r.resync = true
		r.mu.Unlock()
		r.signal()
	}
	inf.log.Debug("resync", zap.Int("keys", len(inf.c.items)))
}
