package controller

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/clock"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/workqueue"
)

// DefaultCacheSyncTimeout is Config.CacheSyncTimeout's default
// (controller-runtime's).
const DefaultCacheSyncTimeout = 2 * time.Minute

// syncProgressEvery is how often Run logs while it waits for its caches.
var syncProgressEvery = 10 * time.Second

// Config of a Controller. Name, Informer and Reconciler are required.
type Config[T any] struct {
	// Name labels logs and metrics; unique within a Manager.
	Name string
	// Informer is the primary cache: each of its keys is a request, and
	// requests carry the key's cached object. Run it yourself, or add it to
	// the Manager (NewInformer does both), so that it runs on every replica
	// and a new leader starts with a warm cache.
	Informer *informer.Informer[T]
	// Reconciler is called for each request.
	Reconciler Reconciler[T]
	// Workers is the number of concurrent reconciles (never two for one
	// key). Default 1.
	Workers int
	// RateLimiter decides how long a key waits after a failed reconcile.
	// Default workqueue.DefaultRateLimiter: 5 ms doubling to 1000 s per key,
	// and 10 retries per second overall (burst 100). Its state outlives
	// leadership terms.
	RateLimiter workqueue.RateLimiter[string]
	// ReconcileTimeout, when positive, bounds each Reconcile's ctx.
	ReconcileTimeout time.Duration
	// CacheSyncTimeout bounds Run's wait for its informers' first sync;
	// past it Run fails with the informer's reason. Default
	// DefaultCacheSyncTimeout.
	CacheSyncTimeout time.Duration
	// RunOnAllReplicas makes a Manager run this controller on every replica
	// instead of on the leader only (for controllers whose writes are
	// idempotent per replica, such as a local cache warmer).
	RunOnAllReplicas bool
	// Logger defaults to zap.NewNop() (a Manager gives its own, named after
	// the controller).
	Logger *zap.Logger
	// Metrics, when set, is updated by the controller (a Manager sets its
	// own when nil).
	Metrics *Metrics
	// QueueMetrics, when set, receives the work queue's metrics
	// (workqueue/prommetrics.New(name); a Manager sets one when nil).
	QueueMetrics workqueue.Metrics
	// Clock drives the queue's delays and backoff. Default: real time.
	Clock clock.Clock
}

func (c *Config[T]) validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: Name is required", ErrInvalidConfig)
	case c.Informer == nil:
		return fmt.Errorf("%w: controller %s: Informer is required", ErrInvalidConfig, c.Name)
	case c.Reconciler == nil:
		return fmt.Errorf("%w: controller %s: Reconciler is required", ErrInvalidConfig, c.Name)
	case c.Workers < 0:
		return fmt.Errorf("%w: controller %s: Workers %d is negative", ErrInvalidConfig, c.Name, c.Workers)
	case c.ReconcileTimeout < 0 || c.CacheSyncTimeout < 0:
		return fmt.Errorf("%w: controller %s: negative timeout", ErrInvalidConfig, c.Name)
	}
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.CacheSyncTimeout == 0 {
		c.CacheSyncTimeout = DefaultCacheSyncTimeout
	}
	if c.RateLimiter == nil {
		var err error
		if c.Clock != nil {
			c.RateLimiter, err = workqueue.DefaultRateLimiter[string](workqueue.WithClock(c.Clock))
		} else {
			c.RateLimiter, err = workqueue.DefaultRateLimiter[string]()
		}
		if err != nil {
			return fmt.Errorf("%w: controller %s: rate limiter: %w", ErrInvalidConfig, c.Name, err)
		}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// Controller feeds the keys of one or more informers into a work queue and
// reconciles them with a pool of workers. Create it with New; run it with Run
// or add it to a Manager. Its methods are safe for concurrent use.
type Controller[T any] struct {
	cfg Config[T]
	log *zap.Logger

	mu            sync.Mutex
	defaultLogger bool // Config.Logger was nil: a Manager may replace it
	sources       []source
	running       bool
	met           *controllerMetrics
}

// source is an informer whose changes map to requests of the controller.
type source interface {
	register(q keyQueue, log *zap.Logger) (informer.Registration, error)
	WaitForCacheSync(ctx context.Context) error
}

// New returns a controller of cfg.Informer's keys. It does no I/O.
func New[T any](cfg Config[T]) (*Controller[T], error) {
	defaultLogger := cfg.Logger == nil
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Controller[T]{cfg: cfg, log: cfg.Logger.With(zap.String("controller", cfg.Name)), defaultLogger: defaultLogger}
	c.sources = []source{primary[T]{cfg.Informer, cfg.Name}}
	return c, nil
}

// Name returns Config.Name.
func (c *Controller[T]) Name() string { return c.cfg.Name }

// NeedLeaderElection tells a Manager whether to run the controller on the
// leader only (the default) or on every replica (Config.RunOnAllReplicas).
func (c *Controller[T]) NeedLeaderElection() bool { return !c.cfg.RunOnAllReplicas }

// Run reconciles until ctx ends, then stops taking requests, cancels the
// reconciles in flight (through their ctx), waits for them to return and
// returns nil. It fails if the informers have not synced within
// CacheSyncTimeout, or if a previous Run has not returned.
//
// Each Run starts from a fresh queue filled with every cached key (a new
// leader reconciles everything once), so a Controller can be run again after
// Run returns, as a Manager does at each leadership term. The rate limiter's
// backoff state carries over.
func (c *Controller[T]) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return fmt.Errorf("%w: controller %s", ErrAlreadyRunning, c.cfg.Name)
	}
	c.running = true
	if c.met == nil {
		c.met = newControllerMetrics(c.cfg.Metrics, c.cfg.Name, c.cfg.Workers)
	}
	sources := c.sources
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()

	q := workqueue.New(workqueue.Config[string]{
		Name: c.cfg.Name, Clock: c.cfg.Clock, RateLimiter: c.cfg.RateLimiter,
		Metrics: c.cfg.QueueMetrics, Logger: c.log,
	})
	defer q.ShutDown()
	for _, s := range sources {
		reg, err := s.register(q, c.log)
		if err != nil {
			return fmt.Errorf("controller %s: %w", c.cfg.Name, err)
		}
		defer reg.Remove()
	}

	syncCtx, cancel := context.WithTimeout(ctx, c.cfg.CacheSyncTimeout)
	defer cancel()
	start := time.Now()
	for _, s := range sources {
		// Waited in slices of syncProgressEvery, each slow one logged with
		// the reason, so that a long wait is never silent.
		for {
			sliceCtx, sliceCancel := context.WithTimeout(syncCtx, syncProgressEvery)
			err := s.WaitForCacheSync(sliceCtx)
			sliceOver := sliceCtx.Err() != nil
			sliceCancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			if syncCtx.Err() != nil {
				return fmt.Errorf("controller %s: caches did not sync within %v: %w", c.cfg.Name, c.cfg.CacheSyncTimeout, err)
			}
			if !sliceOver {
				// Not the slice ending: the informer gave up (its Run has
				// returned), and waiting on would spin.
				return fmt.Errorf("controller %s: caches did not sync: %w", c.cfg.Name, err)
			}
			c.log.Info("still waiting for caches to sync", zap.Duration("waited", time.Since(start).Round(time.Second)),
				zap.Duration("cache_sync_timeout", c.cfg.CacheSyncTimeout), zap.Error(err))
		}
	}
	c.log.Info("starting workers", zap.Int("workers", c.cfg.Workers))

	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() {
			for c.processNext(ctx, q) {
			}
		})
	}
	<-ctx.Done()
	c.log.Info("stopping workers", zap.NamedError("cause", context.Cause(ctx)))
	q.ShutDown()
	wg.Wait()
	c.log.Info("workers stopped")
	return nil
}

// processNext reconciles one request; false once the queue is shut down.
func (c *Controller[T]) processNext(ctx context.Context, q *workqueue.Queue[string]) bool {
	key, prio, shutdown := q.GetWithPriority()
	if shutdown {
		return false
	}
	defer q.Done(key)
	if ctx.Err() != nil {
		// Leadership ended or the controller stops: the next Run starts
		// from the cache again, nothing is lost by dropping the key.
		return true
	}
	obj, exists := c.cfg.Informer.Get(key)
	log := c.log.With(zap.String("key", key))
	rctx := withLogger(ctx, log)
	if c.cfg.ReconcileTimeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(rctx, c.cfg.ReconcileTimeout)
		defer cancel()
	}

	c.met.start()
	start := time.Now()
	res, err := c.reconcile(rctx, Request[T]{Key: key, Object: obj, Exists: exists}, log)
	took := time.Since(start)

	var result string
	switch {
	case err == nil && res.RequeueAfter > 0:
		result = resultRequeueAfter
		q.Forget(key)
		// At the priority it ran at: a fill key's requeue does not
		// overtake live changes (a live change to it still raises it).
		q.AddWithOpts(workqueue.AddOpts{After: res.RequeueAfter, Priority: prio}, key)
	case err == nil:
		result = resultSuccess
		q.Forget(key)
	case ctx.Err() != nil && errors.Is(err, ErrPanic):
		// A panic is counted as one even while stopping; the next Run
		// starts from the cache, so the key is not requeued.
		result = resultPanic
	case ctx.Err() != nil:
		// Stopping: the error is most likely the cancellation itself.
		result = resultCanceled
		log.Debug("reconcile interrupted by shutdown", zap.Error(err))
	case IsTerminal(err):
		result = resultTerminal
		q.Forget(key)
		log.Error("reconcile failed; not retrying (terminal)", zap.Error(err))
	default:
		if res.RequeueAfter > 0 {
			log.Warn("reconcile returned both an error and RequeueAfter; the error wins (backoff)",
				zap.Duration("requeueAfter", res.RequeueAfter))
		}
		result = resultError
		if errors.Is(err, ErrPanic) {
			result = resultPanic
		}
		q.AddWithOpts(workqueue.AddOpts{RateLimited: true, Priority: prio}, key)
		log.Error("reconcile failed; retrying with backoff", zap.Error(err), zap.Int("retries", q.NumRequeues(key)))
	}
	c.met.done(result, took)
	return true
}

// reconcile calls the Reconciler, turning a panic into an error.
func (c *Controller[T]) reconcile(ctx context.Context, req Request[T], log *zap.Logger) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("reconcile panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			res, err = Result{}, fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return c.cfg.Reconciler.Reconcile(ctx, req)
}

// primary maps the controller's own informer: each key is a request.
type primary[T any] struct {
	inf  *informer.Informer[T]
	name string
}

// keyQueue is what a source feeds: the controller's work queue.
type keyQueue interface {
	Add(key string)
	AddWithOpts(o workqueue.AddOpts, keys ...string)
}

// lowPriority is how sources queue work nobody waits for: a term's first
// pass over the cache (initial adds) and resyncs. Live changes, queued at
// the default priority, go before it, so that after a failover with a big
// cache a change made now is reconciled now, not after the whole fill
// (controller-runtime's priority queue does the same).
var lowPriority = workqueue.AddOpts{Priority: workqueue.LowPriority}

func (p primary[T]) register(q keyQueue, _ *zap.Logger) (informer.Registration, error) {
	// Not informer.EnqueueKeys: its handlers all have one name, and the
	// informer's per-handler metrics of controllers sharing it would mix
	// (and vanish for all when one of them stops).
	return p.inf.AddEventHandler(informer.Handler[T]{
		Name: "controller-" + p.name,
		OnAdd: func(key string, _ T, initial bool) {
			if initial {
				q.AddWithOpts(lowPriority, key)
				return
			}
			q.Add(key)
		},
		OnUpdate: func(key string, _, _ T) { q.Add(key) },
		OnResync: func(key string, _ T) { q.AddWithOpts(lowPriority, key) },
		OnDelete: func(key string, _ T, _ bool) { q.Add(key) },
	})
}

func (p primary[T]) WaitForCacheSync(ctx context.Context) error { return p.inf.WaitForCacheSync(ctx) }
