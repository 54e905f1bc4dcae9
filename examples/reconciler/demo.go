package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/regentkv/regent/controller"
	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/examples/internal/backend"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv"
)

// summary is what the demo saw, for its test.
type summary struct {
	First, Second            election.Leader // the leader before and after the crash
	Failover                 time.Duration   // crash to the next leader
	Converged                time.Duration   // crash to actual == desired again
	TTL                      time.Duration
	Reconciles               []reconciled
	SurvivorErrs, CrashedErr error
}

// timeline prints numbered-by-time lines, from any goroutine.
type timeline struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
}

func (t *timeline) say(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = fmt.Fprintf(t.out, "%7.3fs  %s\n", time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}

// process is one replica of the controller program: its own store client,
// a Manager with an election, two informers and the apps controller.
type process struct {
	id      string
	replica *backend.Replica
	mgr     *controller.Manager
	stop    context.CancelFunc
	done    chan error
}

func start(ctx context.Context, cluster *backend.Cluster, id string, ttl time.Duration, report func(reconciled)) (*process, error) {
	rep, err := cluster.NewReplica(ctx, id)
	if err != nil {
		return nil, err
	}
	mgr, err := controller.NewManager(controller.ManagerConfig{
		LeaderElection: &controller.LeaderElection{Store: rep.Store,
			Config: election.Config{Key: electionKey, Identity: id, TTL: ttl}},
		HealthAddr:      "127.0.0.1:0",
		ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	// Both informers run on every replica: a standby's caches are warm
	// when it takes over.
	desired, err := controller.NewInformer(mgr, rep.Store, informer.Config[App]{Prefix: desiredPrefix, Decode: decodeApp})
	if err != nil {
		return nil, err
	}
	actual, err := controller.NewInformer(mgr, rep.Store, informer.Config[Status]{Prefix: actualPrefix, Decode: decodeStatus})
	if err != nil {
		return nil, err
	}
	apps, err := controller.New(controller.Config[App]{
		Name: "apps", Informer: desired, Workers: 2,
		Reconciler: &appReconciler{replica: id, actual: actual, report: report},
	})
	if err != nil {
		return nil, err
	}
	// A status whose app was deleted while no one led is found through
	// the actual cache: each status maps back to its app's request.
	if err := controller.Watch(apps, actual, func(key string, _ Status) []string {
		return []string{desiredPrefix + "/" + appName(key)}
	}); err != nil {
		return nil, err
	}
	if err := mgr.Add(apps); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	p := &process{id: id, replica: rep, mgr: mgr, stop: stop, done: make(chan error, 1)}
	go func() { p.done <- mgr.Run(runCtx) }()
	select {
	case <-mgr.Started():
		return p, nil
	case err := <-p.done:
		stop()
		return nil, err
	}
}

// shutdown stops the process gracefully and returns Run's result.
func (p *process) shutdown() error {
	p.stop()
	return <-p.done
}

// run is the demo: three replicas, desired state, a leader crash while
// the desired state changes, and the failover.
func run(ctx context.Context, out io.Writer, cluster *backend.Cluster) (summary, error) {
	tl := &timeline{out: out, start: time.Now()}
	sum := summary{TTL: max(2*time.Second, cluster.MinTTL())}
	user, err := cluster.NewReplica(ctx, "user")
	if err != nil {
		return sum, err
	}

	// Follow the election from outside, as a dashboard would.
	var mu sync.Mutex
	var leader election.Leader
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	leaders, err := election.Observe(watchCtx, user.Store, electionKey)
	if err != nil {
		return sum, err
	}
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		for l := range leaders {
			if l.Err != nil {
				tl.say("election: no longer observed: %v", l.Err)
				return
			}
			mu.Lock()
			leader = l.Leader
			mu.Unlock()
			if l.Identity == "" {
				tl.say("election: no leader")
			} else {
				tl.say("election: %s leads (fencing token %d)", l.Identity, l.Token)
			}
		}
	}()
	defer func() { stopWatch(); <-observed }()
	waitLeader := func(ok func(election.Leader) bool) (election.Leader, error) {
		var l election.Leader
		err := until(ctx, time.Minute, "a new leader", func() bool {
			mu.Lock()
			defer mu.Unlock()
			l = leader
			return ok(l)
		})
		return l, err
	}

	report := func(r reconciled) {
		tl.say("%s reconciled %-6s %s (token %d)", r.Replica, r.App, r.Action, r.Token)
		mu.Lock()
		sum.Reconciles = append(sum.Reconciles, r)
		mu.Unlock()
	}
	tl.say("starting replicas r1, r2, r3 (election TTL %v)", sum.TTL)
	procs := map[string]*process{}
	defer func() {
		for _, p := range procs {
			_ = p.shutdown() // an early return's cleanup: its error is already the story
		}
	}()
	for _, id := range []string{"r1", "r2", "r3"} {
		p, err := start(ctx, cluster, id, sum.TTL, report)
		if err != nil {
			return sum, fmt.Errorf("start %s: %w", id, err)
		}
		procs[id] = p
		tl.say("%s up: /metrics /healthz /readyz on %s", id, p.mgr.Addr())
	}
	if sum.First, err = waitLeader(func(l election.Leader) bool { return l.Identity != "" }); err != nil {
		return sum, err
	}

	desired := map[string]App{
		"web":    {Image: "nginx:1.27", Replicas: 3},
		"api":    {Image: "api:2.4", Replicas: 2},
		"worker": {Image: "worker:0.9", Replicas: 1},
	}
	for _, name := range sortedNames(desired) {
		if err := setDesired(ctx, user.Store, tl, name, desired[name]); err != nil {
			return sum, err
		}
	}
	if err := until(ctx, time.Minute, "convergence", converged(ctx, user.Store, desired)); err != nil {
		return sum, err
	}
	tl.say("converged: %d apps running", len(desired))

	crashed := procs[sum.First.Identity]
	tl.say("CRASH %s, the leader: no graceful release, its lease expires after the TTL", crashed.id)
	crashAt := time.Now()
	crashed.replica.Crash()

	// The desired state keeps changing while nobody leads.
	desired["web"] = App{Image: "nginx:1.28", Replicas: 5}
	if err := setDesired(ctx, user.Store, tl, "web", desired["web"]); err != nil {
		return sum, err
	}
	delete(desired, "api")
	if err := user.Store.Delete(ctx, desiredPrefix+"/api"); err != nil {
		return sum, err
	}
	tl.say("user:  delete apps/desired/api")
	desired["cache"] = App{Image: "redis:7", Replicas: 1}
	if err := setDesired(ctx, user.Store, tl, "cache", desired["cache"]); err != nil {
		return sum, err
	}

	if sum.Second, err = waitLeader(func(l election.Leader) bool {
		return l.Identity != "" && l.Identity != sum.First.Identity
	}); err != nil {
		return sum, err
	}
	sum.Failover = time.Since(crashAt)
	if err := until(ctx, time.Minute, "convergence after the failover", converged(ctx, user.Store, desired)); err != nil {
		return sum, err
	}
	// A write is visible to readers before its writer hears the answer:
	// wait until the new leader's reconciles of the apps changed during the
	// outage have returned, or shutting down now would cancel them in
	// flight and leave their outcome unknown to the leader itself.
	changed := []string{"web", "api", "cache"}
	if err := until(ctx, time.Minute, "the new leader's reconciles to return", func() bool {
		mu.Lock()
		defer mu.Unlock()
		done := map[string]bool{}
		for _, r := range sum.Reconciles {
			if r.Replica == sum.Second.Identity {
				done[r.App] = true
			}
		}
		for _, app := range changed {
			if !done[app] {
				return false
			}
		}
		return true
	}); err != nil {
		return sum, err
	}
	sum.Converged = time.Since(crashAt)
	tl.say("converged again: failover took %v (TTL %v), desired state reached %v after the crash",
		sum.Failover.Round(time.Millisecond), sum.TTL, sum.Converged.Round(time.Millisecond))

	tl.say("stopping: survivors shut down gracefully, the crashed replica is reaped")
	delete(procs, crashed.id)
	var errs []error
	for _, id := range []string{"r1", "r2", "r3"} {
		if p, ok := procs[id]; ok {
			delete(procs, id)
			if err := p.shutdown(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", id, err))
			}
		}
	}
	sum.SurvivorErrs = errors.Join(errs...)
	sum.CrashedErr = crashed.shutdown()
	return sum, sum.SurvivorErrs
}

func setDesired(ctx context.Context, s kv.Store, tl *timeline, name string, app App) error {
	v, err := json.Marshal(app)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, desiredPrefix+"/"+name, v, nil); err != nil {
		return err
	}
	tl.say("user:  apps/desired/%s = %s x%d", name, app.Image, app.Replicas)
	return nil
}

// converged reports whether apps/actual holds exactly the desired apps.
func converged(ctx context.Context, s kv.Store, desired map[string]App) func() bool {
	return func() bool {
		pairs, err := s.List(ctx, actualPrefix, nil)
		if err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
			return false
		}
		if len(pairs) != len(desired) {
			return false
		}
		for _, p := range pairs {
			st, err := decodeStatus(p.Key, p.Value)
			if err != nil || desired[appName(p.Key)] != st.App {
				return false
			}
		}
		return true
	}
}

// until polls cond until it holds, ctx ends or timeout passes.
func until(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
	return nil
}

func sortedNames(m map[string]App) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
