package controller

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"go.uber.org/zap"

	"github.com/regentkv/regent/workqueue"
)

// Runnable is anything a Manager runs: it blocks until ctx ends and then
// returns nil (or ctx's error). Any other error stops the Manager.
type Runnable interface {
	Run(ctx context.Context) error
}

// LeaderElectionRunnable is a Runnable that says whether it must run on the
// leader only. A Runnable that does not implement it runs on the leader only.
type LeaderElectionRunnable interface {
	NeedLeaderElection() bool
}

// RunnableFunc adapts a function to a Runnable that runs on the leader only.
type RunnableFunc func(ctx context.Context) error

// Run calls f.
func (f RunnableFunc) Run(ctx context.Context) error { return f(ctx) }

// OnEveryReplica wraps r so that a Manager runs it on every replica,
// leader or not.
func OnEveryReplica(r Runnable) Runnable { return everyReplica{r} }

type everyReplica struct{ Runnable }

func (everyReplica) NeedLeaderElection() bool { return false }

// Name is the wrapped runnable's.
func (e everyReplica) Name() string { return runnableName(e.Runnable) }

func runnableName(r Runnable) string {
	if n, ok := r.(interface{ Name() string }); ok {
		return n.Name()
	}
	return fmt.Sprintf("%T", r)
}

// Cache is what a Manager needs of an informer: an *informer.Informer[T] of
// any T is one.
type Cache interface {
	Runnable
	Name() string
	WaitForCacheSync(ctx context.Context) error
	HasSynced() bool
	Check() error
}

type namedRunnable struct {
	name string
	r    Runnable
}

// group runs a Manager's runnables, each counted by name while it runs
// (for the shutdown error), and stops the Manager through fail when one
// returns an error before its ctx ended.
type group struct {
	m    *Manager
	fail func(error)
	wg   sync.WaitGroup
}

// start runs nr in a goroutine of the group.
func (g *group) start(ctx context.Context, nr namedRunnable) {
	g.m.track(nr.name, 1)
	g.wg.Go(func() {
		defer g.m.track(nr.name, -1)
		if err := nr.r.Run(ctx); err != nil && ctx.Err() == nil {
			g.m.log.Error("runnable failed; stopping the manager", zap.String("runnable", nr.name), zap.Error(err))
			g.fail(fmt.Errorf("controller: runnable %s: %w", nr.name, err))
		}
	})
}

// wait waits for every runnable the group started.
func (g *group) wait() { g.wg.Wait() }

func (m *Manager) track(name string, d int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live[name] += d
	if m.live[name] == 0 {
		delete(m.live, name)
	}
}

func (m *Manager) liveNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.live))
	for n := range m.live {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// adoptable is implemented by Controllers: Add gives them the Manager's
// logger and metrics where their Config left them unset.
type adoptable interface {
	adopt(log *zap.Logger, met *Metrics, newQueueMetrics func() (workqueue.Metrics, error)) error
}

func (c *Controller[T]) adopt(log *zap.Logger, met *Metrics, newQueueMetrics func() (workqueue.Metrics, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return fmt.Errorf("%w: controller %s is running", ErrAlreadyRunning, c.cfg.Name)
	}
	if c.defaultLogger {
		c.cfg.Logger = log
		c.log = log.With(zap.String("controller", c.cfg.Name))
	}
	if c.cfg.Metrics == nil {
		c.cfg.Metrics = met
		c.met = nil
	}
	if c.cfg.QueueMetrics == nil {
		qm, err := newQueueMetrics()
		if err != nil {
			return err
		}
		c.cfg.QueueMetrics = qm
	}
	return nil
}
