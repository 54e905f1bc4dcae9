package discovery

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv"
)

// WatchOptions tune NewWatcher. A nil *WatchOptions means the zero value.
type WatchOptions struct {
	// Prefix is the directory of all services. Default DefaultPrefix.
	Prefix string
	// Match keeps only the instances whose Metadata holds every pair of
	// it (all instances when empty).
	Match map[string]string
	// OnChange, optional, is called with the matching instances, sorted by
	// ID, once the watcher has synced and after every change to them, from
	// one goroutine at a time; it must not block for long.
	OnChange func(instances []Instance)
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Metrics, optional, has the number of instances the watcher holds.
	Metrics *Metrics
	// InformerMetrics, optional, is updated by the watcher's informer.
	InformerMetrics *informer.Metrics
}

// Watcher is an always-current set of one service's instances, cached by an
// informer on the service's directory. Its methods are safe for concurrent
// use.
type Watcher struct {
	inf      *informer.Informer[Instance]
	match    map[string]string
	onChange func([]Instance)
	count    prometheus.Gauge      // instances held; nil without Metrics
	reg      informer.Registration // of the change handler; nil without OnChange and Metrics

	mu   sync.Mutex // serialises OnChange calls and their dedup
	last []Instance
	sent bool
}

// NewWatcher returns a Watcher of service in s; Run starts it.
func NewWatcher(s kv.Store, service string, opts *WatchOptions) (*Watcher, error) {
	var o WatchOptions
	if opts != nil {
		o = *opts
	}
	dir, err := serviceDir(o.Prefix, service)
	if err != nil {
		return nil, err
	}
	inf, err := informer.New(s, informer.Config[Instance]{
		Name:    "discovery/" + service,
		Prefix:  dir,
		Decode:  decode,
		Logger:  o.Logger,
		Metrics: o.InformerMetrics,
		OnError: func(key string, err error) {
			if o.Logger != nil {
				o.Logger.Warn("discovery: unreadable instance record ignored", zap.String("key", key), zap.Error(err))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("discovery: watch %q: %w", service, err)
	}
	w := &Watcher{inf: inf, match: o.Match, onChange: o.OnChange}
	if o.Metrics != nil {
		w.count = o.Metrics.instances.WithLabelValues(service)
	}
	if w.onChange != nil || w.count != nil {
		changed := func() { w.notify() }
		reg, err := inf.AddEventHandler(informer.Handler[Instance]{
			Name:     "discovery",
			OnAdd:    func(string, Instance, bool) { changed() },
			OnUpdate: func(string, Instance, Instance) { changed() },
			OnDelete: func(string, Instance, bool) { changed() },
		})
		if err != nil {
			return nil, fmt.Errorf("discovery: watch %q: %w", service, err)
		}
		w.reg = reg
	}
	return w, nil
}

// Run follows the service until ctx ends (see informer.Informer.Run).
func (w *Watcher) Run(ctx context.Context) error {
	if w.reg != nil {
		// A service with no instance brings no event: OnChange still
		// hears of the (empty) set once the handler has synced.
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		wg.Go(func() {
			select {
			case <-w.reg.Synced():
				w.notify()
			case <-sctx.Done():
			}
		})
	}
	return w.inf.Run(ctx)
}

// WaitForSync blocks until the watcher holds the whole current set, Run has
// returned, or ctx ends; the error says which.
func (w *Watcher) WaitForSync(ctx context.Context) error { return w.inf.WaitForCacheSync(ctx) }

// Instances returns the matching instances, sorted by ID: a copy the caller
// owns. Before the first sync it is empty; see WaitForSync.
func (w *Watcher) Instances() []Instance {
	all := w.inf.List()
	out := make([]Instance, 0, len(all))
	for _, i := range all {
		if i.matches(w.match) {
			out = append(out, i.clone())
		}
	}
	sortByID(out)
	return out
}

// Check reports whether the watcher's cache is current (informer Check):
// nil when it is, an error saying why not otherwise.
func (w *Watcher) Check() error { return w.inf.Check() }

// notify counts the current set and calls OnChange with it when it
// differs from the last one sent (a change to an instance outside Match
// changes nothing).
func (w *Watcher) notify() {
	if !w.inf.HasSynced() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.Instances()
	if w.count != nil {
		w.count.Set(float64(len(now)))
	}
	if w.onChange == nil || (w.sent && sameInstances(w.last, now)) {
		return
	}
	w.last, w.sent = now, true
	w.onChange(now)
}

func sameInstances(a, b []Instance) bool {
	return slices.EqualFunc(a, b, func(x, y Instance) bool {
		return x.ID == y.ID && x.Address == y.Address && maps.Equal(x.Metadata, y.Metadata)
	})
}
