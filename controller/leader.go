package controller

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/kv"
)

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

// newElector makes the Manager's elector in NewManager, so that a bad
// election config is NewManager's error, not Run's. It does no I/O.
func (m *Manager) newElector(le LeaderElection) (*election.Elector, error) {
	switch {
	case le.Store == nil:
		return nil, fmt.Errorf("%w: LeaderElection.Store is required", ErrInvalidConfig)
	case le.Callbacks.OnStartedLeading != nil:
		return nil, fmt.Errorf("%w: LeaderElection.Callbacks.OnStartedLeading is the Manager's; use a Runnable", ErrInvalidConfig)
	}
	cfg := le.Config
	if cfg.Logger == nil {
		cfg.Logger = m.log.Named("election")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = election.NewMetrics()
		if err := registerAll(m.reg, cfg.Metrics); err != nil {
			return nil, err
		}
	}
	cfg.Callbacks.OnStartedLeading = m.lead
	el, err := election.New(context.Background(), le.Store, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: LeaderElection: %w", ErrInvalidConfig, err)
	}
	return el, nil
}

// lead runs the leader-only runnables for one term (the elector calls it,
// or Run without an election) and holds the term until it ends: returning
// would resign.
func (m *Manager) lead(ctx context.Context) {
	m.mu.Lock()
	leaders, fail := m.leaders, m.fail
	m.mu.Unlock()
	if fail == nil { // only Run starts the elector, after setting fail
		<-ctx.Done()
		return
	}
	m.log.Info("leading: starting leader-only runnables", zap.Int("runnables", len(leaders)))
	term := &group{m: m, fail: fail}
	for _, nr := range leaders {
		term.start(ctx, nr)
	}
	term.wait()
	<-ctx.Done()
	m.log.Info("leadership ended: leader-only runnables stopped", zap.NamedError("cause", context.Cause(ctx)))
}

// Elector returns the Manager's elector (nil without LeaderElection, or
// before Run), for Leader, Observe and Resign. Run runs it: running it
// yourself too returns election.ErrAlreadyRunning.
func (m *Manager) Elector() *election.Elector {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return nil
	}
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
	running := m.running && !m.finished
	m.mu.Unlock()
	switch {
	case !running:
		return false
	case m.elector == nil:
		return true
	}
	return m.elector.IsLeader()
}
