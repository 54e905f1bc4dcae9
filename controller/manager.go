package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
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
	// the runnables to return and then the HTTP server's requests in
	// flight (which get what is left of it, a second at least). Default
	// DefaultShutdownTimeout.
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
	fail     func(error)    // Run's: stops the Manager with a failure
	live     map[string]int // runnables running now, for the shutdown error
	stopping bool           // Run's ctx has ended: /readyz fails
	finished bool           // Run has returned
	names    map[string]bool
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
		el, err := m.newElector(*cfg.LeaderElection)
		if err != nil {
			return nil, err
		}
		m.elector = el
		m.checks["healthz"] = append(m.checks["healthz"], namedCheck{"leader-election", el.Check})
		m.checks["readyz"] = append(m.checks["readyz"], namedCheck{"leader-election", el.Check})
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

// Run starts every informer and runnable, campaigns for leadership if
// configured, and serves HTTP, until ctx ends or a runnable fails. Then it
// cancels every runnable's ctx, waits up to ShutdownTimeout for them to
// return (the election releases leadership once the leader-only ones have),
// stops the HTTP server (waiting up to ShutdownTimeout for requests in
// flight) and returns: nil after ctx ended, the runnable's error after a
// failure, ErrShutdownTimeout naming the runnables that did not return in
// time.
func (m *Manager) Run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// fail marks the cause as the Manager's own failure, so that Run tells
	// it apart from whatever cause the caller cancelled ctx with.
	fail := func(err error) { cancel(failure{err}) }
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return ErrAlreadyRunning
	}
	m.running, m.fail = true, fail
	caches, everyone := m.caches, m.everyone
	m.mu.Unlock()
	startedOnce := sync.OnceFunc(func() { close(m.started) })
	defer func() {
		m.mu.Lock()
		m.finished = true
		m.mu.Unlock()
		startedOnce() // also when Run fails before starting: never leave a waiter hanging
	}()

	var deadline time.Time // of the shutdown, once it began: runnables and server share it
	if m.cfg.HealthAddr != "" {
		srv, err := m.startServer(fail)
		if err != nil {
			return err
		}
		// The server goes last: /healthz and /metrics stay up while the
		// runnables stop. It gets what is left of the shutdown's time, and
		// a second at least for the requests in flight.
		defer func() {
			left := m.cfg.ShutdownTimeout
			if !deadline.IsZero() {
				left = max(time.Until(deadline), time.Second)
			}
			srv.shutdown(left)
		}()
	}
	all := &group{m: m, fail: fail}
	for _, c := range caches {
		all.start(ctx, namedRunnable{"informer:" + c.Name(), c})
	}
	for _, nr := range everyone {
		all.start(ctx, nr)
	}
	if m.elector != nil {
		all.start(ctx, namedRunnable{"leader-election", RunnableFunc(m.elector.Run)})
	} else {
		all.wg.Go(func() { m.lead(ctx) })
	}
	startedOnce()

	<-ctx.Done()
	deadline = time.Now().Add(m.cfg.ShutdownTimeout)
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	cause := context.Cause(ctx)
	m.log.Info("shutting down", zap.NamedError("cause", cause), zap.Duration("timeout", m.cfg.ShutdownTimeout))
	stopped := make(chan struct{})
	go func() {
		all.wait()
		close(stopped)
	}()
	t := time.NewTimer(time.Until(deadline))
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
