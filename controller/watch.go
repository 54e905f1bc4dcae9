package controller

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv"
)

// Watch makes changes in a second informer reconcile keys of c's own
// informer: for every add, update (both the old and the new object) and
// delete of a key in inf, the keys mapFn returns are queued. This is how a
// controller of "deployments/..." learns that one of the "pods/..." it owns
// changed: mapFn returns the owner's key, a key of c's informer. Keys are
// normalised before they are queued (kv.NormalizeKey: "/apps/web/" is
// "apps/web"); an invalid one is logged and dropped.
//
// Watch must be called before Run; inf must be run by the caller or the
// Manager, like the primary informer, and Run waits for its sync too.
func Watch[T, U any](c *Controller[T], inf *informer.Informer[U], mapFn func(key string, obj U) []string) error {
	if inf == nil || mapFn == nil {
		return fmt.Errorf("%w: controller %s: Watch needs an informer and a map function", ErrInvalidConfig, c.cfg.Name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return fmt.Errorf("%w: controller %s: Watch after Run", ErrAlreadyRunning, c.cfg.Name)
	}
	c.sources = append(c.sources, mapped[U]{inf, mapFn, fmt.Sprintf("controller-%s-watch-%d", c.cfg.Name, len(c.sources))})
	return nil
}

type mapped[U any] struct {
	inf   *informer.Informer[U]
	mapFn func(key string, obj U) []string
	// handler names the informer handler, unique per controller and Watch
	// (the informer's per-handler metrics are by name).
	handler string
}

func (m mapped[U]) register(q keyQueue, log *zap.Logger) (informer.Registration, error) {
	add := func(key string, obj U, low bool) {
		for _, k := range m.mapFn(key, obj) {
			// A key in another form than the informer's would find no
			// cached object and look deleted: the reconciler would clean
			// up live state. Normalise it; drop what is no key at all.
			nk, err := kv.NormalizeKey(k)
			if err != nil {
				log.Error("Watch map function returned an invalid key; dropped",
					zap.String("from", key), zap.Error(err))
				continue
			}
			if low {
				q.AddWithOpts(lowPriority, nk)
			} else {
				q.Add(nk)
			}
		}
	}
	return m.inf.AddEventHandler(informer.Handler[U]{
		Name:     m.handler,
		OnAdd:    func(key string, obj U, initial bool) { add(key, obj, initial) },
		OnUpdate: func(key string, old, obj U) { add(key, old, false); add(key, obj, false) },
		OnResync: func(key string, obj U) { add(key, obj, true) },
		OnDelete: func(key string, last U, _ bool) { add(key, last, false) },
	})
}

func (m mapped[U]) WaitForCacheSync(ctx context.Context) error { return m.inf.WaitForCacheSync(ctx) }
