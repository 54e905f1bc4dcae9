package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/workqueue"
	"github.com/regentkv/regent/workqueue/prommetrics"
)

// DefaultShutdownTimeout is ManagerConfig.ShutdownTimeout's default.
const DefaultShutdownTimeout = 30 * time.Second

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

// LeaderElection configures the election that gates a Manager's leader-only
// runnables.
type LeaderElection struct {
	// Store holds the election.
	Store kv.Store
	// Config of the election: Key and Identity are required.
	// Callbacks.OnStartedLeading must be nil: the Manager's own starts the
	// leader-only runnables. OnStoppedLeading and OnNewLeader are called.
	// Logger and Metrics default to the Manager's.
	election.Config
}

// ManagerConfig configures a Manager. The zero value runs every runnable
// without an election and serves no HTTP.
type ManagerConfig struct {
	// LeaderElection, when set, runs leader-only runnables (controllers by
	// default) only while this replica leads. Without it they always run.
	LeaderElection *LeaderElection
	// HealthAddr, when set ("127.0.0.1:8081", ":0"), serves /metrics
	// (Prometheus), /healthz (liveness) and /readyz (readiness) there. Addr
	// returns the bound address once Run has started.
	HealthAddr string
	// Registry receives every metric of the Manager, its informers,
	// controllers, queues and election. Default: a new registry with the Go
	// and process collectors. /metrics serves it.
	Registry *prometheus.Registry
	// ShutdownTimeout bounds how long Run waits, once its ctx ended, for
	// the runnables to return. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger defaults to zap.NewNop(). Each controller gets a child named
	// after it.
	Logger *zap.Logger
}

// Manager runs informers, controllers and other runnables, gates the
// leader-only ones behind an election, and serves health and metrics. See
// the package documentation for its guarantees.
type Manager struct {
	cfg      ManagerConfig
	log      *zap.Logger
	reg      *prometheus.Registry
	ctrlMet  *Metrics
	infMet   *informer.Metrics
	elector  *election.Elector
	checks   map[string][]namedCheck // "healthz", "readyz"
	started  chan struct{}           // closed once Run has started everything
	addr     net.Addr
	mu       sync.Mutex
	running  bool
	caches   []Cache
	everyone []namedRunnable
	leaders  []namedRunnable
	live     map[string]int // runnables running now, for the shutdown error
	stopping bool           // Run's ctx has ended: /readyz fails
	finished bool           // Run has returned
	names    map[string]bool
}

type namedRunnable struct {
	name string
	r    Runnable
}

type namedCheck struct {
	name  string
	check func() error
}

// NewManager returns a Manager. It does no I/O: Run starts the election and
// the HTTP server.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.ShutdownTimeout < 0 {
		return nil, fmt.Errorf("%w: ShutdownTimeout %v is negative", ErrInvalidConfig, cfg.ShutdownTimeout)
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &Manager{
		cfg: cfg, log: cfg.Logger, reg: reg,
		ctrlMet: NewMetrics(), infMet: informer.NewMetrics(),
		checks:  map[string][]namedCheck{},
		started: make(chan struct{}),
		live:    map[string]int{}, names: map[string]bool{},
	}
	if err := registerAll(reg, m.ctrlMet, m.infMet); err != nil {
		return nil, err
	}
	m.checks["readyz"] = []namedCheck{{"manager", m.checkRunning}}
	if cfg.LeaderElection != nil {
		// A copy: the caller's may be reused for another Manager, which
		// must get its own logger and metrics.
		le := *cfg.LeaderElection
		m.cfg.LeaderElection = &le
		switch {
		case le.Store == nil:
			return nil, fmt.Errorf("%w: LeaderElection.Store is required", ErrInvalidConfig)
		case le.Callbacks.OnStartedLeading != nil:
			return nil, fmt.Errorf("%w: LeaderElection.Callbacks.OnStartedLeading is the Manager's; use a Runnable", ErrInvalidConfig)
		}
		if le.Logger == nil {
			le.Logger = cfg.Logger.Named("election")
		}
		if le.Metrics == nil {
			le.Metrics = election.NewMetrics()
			if err := registerAll(reg, le.Metrics); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("%w: Registry: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}

// NewInformer creates an informer with the Manager's logger and metrics
// (unless cfg sets its own) and adds it to m: it runs on every replica, so
// a standby's cache is warm when it becomes leader, and /readyz reports it.
func NewInformer[T any](m *Manager, store kv.Store, cfg informer.Config[T]) (*informer.Informer[T], error) {
	if cfg.Logger == nil {
		cfg.Logger = m.log.Named("informer")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = m.infMet
	}
	inf, err := informer.New(store, cfg)
	if err != nil {
		return nil, err
	}
	if err := m.AddInformer(inf); err != nil {
		return nil, err
	}
	return inf, nil
}

// AddInformer adds an informer (or any Cache) that runs on every replica
// and must be synced and fresh for /readyz.
func (m *Manager) AddInformer(c Cache) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name := "informer:" + c.Name()
	if err := m.claimLocked(name); err != nil {
		return err
	}
	m.caches = append(m.caches, c)
	m.checks["readyz"] = append(m.checks["readyz"], namedCheck{name, c.Check})
	return nil
}

// Add adds a Runnable: a Controller, or anything else. It runs on the
// leader only, unless it implements LeaderElectionRunnable and says
// otherwise (OnEveryReplica, Config.RunOnAllReplicas). Controllers without
// their own Logger, Metrics or QueueMetrics get the Manager's. An informer
// (any Cache) is handed to AddInformer: caches run on every replica, so
// that standbys stay warm.
func (m *Manager) Add(r Runnable) error {
	if c, ok := r.(Cache); ok {
		return m.AddInformer(c)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	name := runnableName(r)
	if err := m.claimLocked(name); err != nil {
		return err
	}
	inner := r
	if e, ok := r.(everyReplica); ok {
		inner = e.Runnable
	}
	if a, ok := inner.(adoptable); ok {
		newQueueMetrics := func() (workqueue.Metrics, error) {
			qm := prommetrics.New(name)
			if err := m.reg.Register(qm); err != nil {
				return nil, fmt.Errorf("%w: queue metrics of %s: %w", ErrInvalidConfig, name, err)
			}
			return qm, nil
		}
		if err := a.adopt(m.log.Named(name), m.ctrlMet, newQueueMetrics); err != nil {
			delete(m.names, name) // not added: the name stays free
			return err
		}
	}
	nr := namedRunnable{name, r}
	if le, ok := r.(LeaderElectionRunnable); ok && !le.NeedLeaderElection() {
		m.everyone = append(m.everyone, nr)
	} else {
		m.leaders = append(m.leaders, nr)
	}
	return nil
}

func (m *Manager) claimLocked(name string) error {
	if m.running {
		return fmt.Errorf("%w: cannot add %s", ErrStarted, name)
	}
	if m.names[name] {
		return fmt.Errorf("%w: two runnables named %q", ErrInvalidConfig, name)
	}
	m.names[name] = true
	return nil
}

// AddHealthzCheck adds a liveness check to /healthz.
func (m *Manager) AddHealthzCheck(name string, check func() error) {
	m.addCheck("healthz", name, check)
}

// AddReadyzCheck adds a readiness check to /readyz.
func (m *Manager) AddReadyzCheck(name string, check func() error) { m.addCheck("readyz", name, check) }

func (m *Manager) addCheck(kind, name string, check func() error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checks[kind] = append(m.checks[kind], namedCheck{name, check})
}

// Registry returns the registry that /metrics serves, for your own metrics.
func (m *Manager) Registry() *prometheus.Registry { return m.reg }

// Started is closed once Run has started every runnable it runs on all
// replicas and the HTTP server (Addr is then valid), or once Run has
// returned without getting that far (wait on Run's result too).
func (m *Manager) Started() <-chan struct{} { return m.started }

// Addr returns the address /metrics, /healthz and /readyz are served on,
// or nil before Started or without ManagerConfig.HealthAddr.
func (m *Manager) Addr() net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// Elector returns the Manager's elector (nil without LeaderElection, or
// before Run), for Leader, Observe and Resign.
func (m *Manager) Elector() *election.Elector {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.elector
}

// IsLeader reports whether this replica holds leadership now, as far as it
// knows: always true without LeaderElection while Run runs, false once it
// has returned. With an election it turns false as soon as the term ends,
// while the leader-only runnables may still be stopping (for up to the
// election's HealthTimeout); nothing they write through their Term lands
// after that.
func (m *Manager) IsLeader() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running || m.finished {
		return false
	}
	if m.elector == nil {
		return m.cfg.LeaderElection == nil
	}
	return m.elector.IsLeader()
}

// Run starts every informer and runnable, campaigns for leadership if
// configured, and serves HTTP, until ctx ends or a runnable fails. Then it
// cancels every runnable's ctx, waits up to ShutdownTimeout for them to
// return (the election releases leadership once the leader-only ones have),
// stops the HTTP server and returns: nil after ctx ended, the runnable's
// error after a failure, ErrShutdownTimeout naming the runnables that did
// not return in time.
func (m *Manager) Run(ctx context.Context) (err error) {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return ErrAlreadyRunning
	}
	m.running = true
	m.mu.Unlock()
	startedOnce := sync.OnceFunc(func() { close(m.started) })
	defer func() {
		m.mu.Lock()
		m.finished = true
		m.mu.Unlock()
		startedOnce() // also when Run fails before starting: never leave a waiter hanging
	}()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// stop marks the cause as the Manager's own failure, so that Run tells
	// it apart from whatever cause the caller cancelled ctx with.
	stop := func(err error) { cancel(failure{err}) }
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() { <-ctx.Done(); close(done) }()
	start := func(ctx context.Context, nr namedRunnable) {
		m.track(nr.name, 1)
		wg.Go(func() {
			defer m.track(nr.name, -1)
			if err := nr.r.Run(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("runnable failed; stopping the manager", zap.String("runnable", nr.name), zap.Error(err))
				stop(fmt.Errorf("controller: runnable %s: %w", nr.name, err))
			}
		})
	}

	var srv *http.Server
	if m.cfg.HealthAddr != "" {
		ln, err := net.Listen("tcp", m.cfg.HealthAddr)
		if err != nil {
			return fmt.Errorf("controller: health server: %w", err)
		}
		srv = &http.Server{Handler: m.handler(), ReadHeaderTimeout: 10 * time.Second}
		m.mu.Lock()
		m.addr = ln.Addr()
		m.mu.Unlock()
		served := make(chan struct{})
		defer func() { <-served }() // after Shutdown (deferred later, so run first)
		go func() {
			defer close(served)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				stop(fmt.Errorf("controller: health server: %w", err))
			}
		}()
		m.log.Info("serving /metrics, /healthz, /readyz", zap.Stringer("addr", ln.Addr()))
	}

	m.mu.Lock()
	caches, everyone, leaders := m.caches, m.everyone, m.leaders
	m.mu.Unlock()
	for _, c := range caches {
		start(ctx, namedRunnable{"informer:" + c.Name(), c})
	}
	for _, nr := range everyone {
		start(ctx, nr)
	}
	lead := func(ctx context.Context) {
		m.log.Info("leading: starting leader-only runnables", zap.Int("runnables", len(leaders)))
		var term sync.WaitGroup
		for _, nr := range leaders {
			m.track(nr.name, 1)
			term.Go(func() {
				defer m.track(nr.name, -1)
				if err := nr.r.Run(ctx); err != nil && ctx.Err() == nil {
					m.log.Error("runnable failed; stopping the manager", zap.String("runnable", nr.name), zap.Error(err))
					stop(fmt.Errorf("controller: runnable %s: %w", nr.name, err))
				}
			})
		}
		term.Wait()
		// Returning would resign: hold the term until it ends.
		<-ctx.Done()
		m.log.Info("leadership ended: leader-only runnables stopped", zap.NamedError("cause", context.Cause(ctx)))
	}
	if le := m.cfg.LeaderElection; le != nil {
		cfg := le.Config
		cfg.Callbacks.OnStartedLeading = lead
		el, err := election.New(ctx, le.Store, cfg)
		if err != nil {
			stop(err)
		} else {
			m.mu.Lock()
			m.elector = el
			m.checks["healthz"] = append(m.checks["healthz"], namedCheck{"leader-election", el.Check})
			m.checks["readyz"] = append(m.checks["readyz"], namedCheck{"leader-election", el.Check})
			m.mu.Unlock()
			start(ctx, namedRunnable{"leader-election", RunnableFunc(el.Run)})
		}
	} else {
		wg.Go(func() { lead(ctx) })
	}
	startedOnce()

	<-done
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	cause := context.Cause(ctx)
	m.log.Info("shutting down", zap.NamedError("cause", cause), zap.Duration("timeout", m.cfg.ShutdownTimeout))
	if srv != nil {
		// The server goes last: /healthz and /metrics stay up while the
		// runnables stop. Shutdown waits for requests in flight.
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
	t := time.NewTimer(m.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		err := fmt.Errorf("%w after %v: still running: %v", ErrShutdownTimeout, m.cfg.ShutdownTimeout, m.liveNames())
		m.log.Error("shutdown timed out", zap.Error(err))
		return err
	}
	if f, ok := errors.AsType[failure](cause); ok {
		return f.error
	}
	return nil
}

// failure is a Manager's stop cause: a runnable, the election or the HTTP
// server failed.
type failure struct{ error }

func (f failure) Unwrap() error { return f.error }

// checkRunning fails /readyz while the Manager shuts down, so that a load
// balancer stops sending work before the HTTP server goes away.
func (m *Manager) checkRunning() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopping {
		return errors.New("manager is shutting down")
	}
	return nil
}

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
