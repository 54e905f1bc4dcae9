package controller_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regentkv/regent/controller"
	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/poll"
)

// TestPanicDuringShutdownIsCounted: a reconcile that panics after its ctx
// ended is still a panic, counted as one, not hidden as "canceled".
func TestPanicDuringShutdownIsCounted(t *testing.T) {
	s := newMemory(t)
	put(t, s, "apps/a", "1")
	inf := newInformer(t, s, "apps")
	met := controller.NewMetrics()
	entered := make(chan struct{})
	c := newController(t, controller.Config[string]{Informer: inf, Metrics: met,
		Reconciler: controller.ReconcileFunc[string](func(ctx context.Context, _ controller.Request[string]) (controller.Result, error) {
			close(entered)
			<-ctx.Done()
			panic("cleanup after cancel blew up")
		})})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-entered
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := testutil.ToFloat64(met.Panics("test")); got != 1 {
		t.Errorf("panics = %v, want 1", got)
	}
	if got := testutil.ToFloat64(met.Reconciles("test", "panic")); got != 1 {
		t.Errorf("panic reconciles = %v, want 1", got)
	}
}

// TestManagerReturnsNilWhenParentCancelledWithCause: Run returns nil after
// its ctx ended, whatever cause the caller gave; only a runnable's failure
// is an error.
func TestManagerReturnsNilWhenParentCancelledWithCause(t *testing.T) {
	m, err := controller.NewManager(controller.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-m.Started()
	cancel(errors.New("operator asked for a restart"))
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after its ctx ended", err)
	}
}

// TestWatchNormalisesMappedKeys: a map function that returns keys in a
// non-canonical form ("/apps/web/") reconciles the existing key, not a
// phantom "deleted" one that would make the reconciler clean up live state.
func TestWatchNormalisesMappedKeys(t *testing.T) {
	s := newMemory(t)
	put(t, s, "apps/web", "v1")
	apps := newInformer(t, s, "apps")
	pods := newInformer(t, s, "pods")
	r := newRecorder(nil)
	c := newController(t, controller.Config[string]{Informer: apps, Reconciler: r})
	owner := func(_ string, pod string) []string { return []string{"/apps/" + pod + "/", "apps//bad"} }
	if err := controller.Watch(c, pods, owner); err != nil {
		t.Fatal(err)
	}
	background(t, "Controller.Run", c.Run, nil)
	poll.Until(t, wait, "apps/web not reconciled", func() bool { return r.count("apps/web") == 1 })
	put(t, s, "pods/web-1", "web")
	poll.Until(t, wait, "a pod change did not reconcile its app", func() bool { return r.count("apps/web") == 2 })
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.seen {
		if req.Key != "apps/web" || !req.Exists {
			t.Errorf("reconciled %q (exists %v); want only the existing apps/web", req.Key, req.Exists)
		}
	}
}

// TestOnEveryReplicaControllerIsAdopted: a Controller wrapped with
// OnEveryReplica still gets the Manager's metrics.
func TestOnEveryReplicaControllerIsAdopted(t *testing.T) {
	m, err := controller.NewManager(controller.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := newMemory(t)
	put(t, s, "apps/a", "1")
	inf := newInformer(t, s, "apps")
	r := newRecorder(nil)
	c := newController(t, controller.Config[string]{Name: "everywhere", Informer: inf, Reconciler: r})
	if err := m.Add(controller.OnEveryReplica(c)); err != nil {
		t.Fatal(err)
	}
	background(t, "Manager.Run", m.Run, nil)
	poll.Until(t, wait, "apps/a not reconciled", func() bool { return r.count("apps/a") == 1 })
	poll.Until(t, wait, "the wrapped controller's reconcile is not in the Manager's registry", func() bool {
		n, err := testutil.GatherAndCount(m.Registry(), "regent_controller_reconcile_total")
		return err == nil && n > 0
	})
}

// TestNewManagerLeavesLeaderElectionAlone: NewManager does not write its
// defaults into the caller's LeaderElection, so that one can be reused for
// a second Manager (a second replica in the same process) without the two
// sharing the first one's logger and metrics (which the second registry
// would then never serve).
func TestNewManagerLeavesLeaderElectionAlone(t *testing.T) {
	le := &controller.LeaderElection{Store: newMemory(t), Config: election.Config{Key: "leader", Identity: "a"}}
	if _, err := controller.NewManager(controller.ManagerConfig{LeaderElection: le}); err != nil {
		t.Fatal(err)
	}
	if le.Logger != nil || le.Metrics != nil {
		t.Errorf("NewManager set the caller's LeaderElection Logger=%v Metrics=%v", le.Logger, le.Metrics)
	}
}

// TestIsLeaderFalseAfterRun: once Run has returned nothing leader-only runs
// here, with or without an election.
func TestIsLeaderFalseAfterRun(t *testing.T) {
	m, err := controller.NewManager(controller.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-m.Started()
	if !m.IsLeader() {
		t.Error("IsLeader false while running without an election")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m.IsLeader() {
		t.Error("IsLeader true after Run returned")
	}
}

// TestControllersSharingAnInformerKeepTheirHandlerMetrics: two controllers
// of one informer register handlers of distinct names, so that stopping one
// does not drop the other's series from the informer's metrics.
func TestControllersSharingAnInformerKeepTheirHandlerMetrics(t *testing.T) {
	s := newMemory(t)
	put(t, s, "apps/a", "1")
	infMet := informer.NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(infMet)
	inf, err := informer.New(s, informer.Config[string]{Prefix: "apps", Decode: decodeString, Metrics: infMet})
	if err != nil {
		t.Fatal(err)
	}
	background(t, "informer.Run", inf.Run, context.Canceled)
	ra, rb := newRecorder(nil), newRecorder(nil)
	a := newController(t, controller.Config[string]{Name: "a", Informer: inf, Reconciler: ra})
	b := newController(t, controller.Config[string]{Name: "b", Informer: inf, Reconciler: rb})
	ctxA, stopA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	background(t, "b.Run", b.Run, nil)
	poll.Until(t, wait, "apps/a not reconciled by both", func() bool { return ra.count("apps/a") == 1 && rb.count("apps/a") == 1 })
	handlers := func() map[string]bool {
		got := map[string]bool{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "regent_informer_handler_queue_depth" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "handler" {
						got[l.GetValue()] = true
					}
				}
			}
		}
		return got
	}
	if n := len(handlers()); n != 2 {
		t.Errorf("handler series while both run: %v, want 2", handlers())
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	if n := len(handlers()); n != 1 {
		t.Errorf("handler series after a stopped: %v, want b's only", handlers())
	}
}

// TestOutcomesOnEachBackend: retries with backoff, terminal errors, panics
// and RequeueAfter on a real store (etcd, unless -short) as on memory, with
// real time and the default rate limiter, and a graceful stop.
func TestOutcomesOnEachBackend(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.new(t)
			for _, k := range []string{"err", "term", "panic", "again"} {
				put(t, s, "outcomes/"+k, "1")
			}
			inf := newInformer(t, s, "outcomes")
			met := controller.NewMetrics()
			r := newRecorder(func(req controller.Request[string], n int) (controller.Result, error) {
				switch {
				case req.Key == "outcomes/err" && n <= 2:
					return controller.Result{}, errors.New("not yet")
				case req.Key == "outcomes/term":
					return controller.Result{}, controller.Terminal(errors.New("invalid spec"))
				case req.Key == "outcomes/panic" && n == 1:
					panic("boom")
				case req.Key == "outcomes/again" && n == 1:
					return controller.Result{RequeueAfter: 20 * time.Millisecond}, nil
				}
				return controller.Result{}, nil
			})
			c := newController(t, controller.Config[string]{Name: "outcomes", Informer: inf, Reconciler: r, Workers: 2, Metrics: met})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			poll.Until(t, wait, "outcomes not reached", func() bool {
				return r.count("outcomes/err") == 3 && r.count("outcomes/panic") == 2 && r.count("outcomes/again") == 2 &&
					r.count("outcomes/term") == 1
			})
			// 3 successes: err, panic, again (its second pass).
			poll.Until(t, wait, "success count", func() bool { return testutil.ToFloat64(met.Reconciles("outcomes", "success")) == 3 })
			for result, want := range map[string]float64{"error": 2, "terminal_error": 1, "panic": 1, "requeue_after": 1} {
				if got := testutil.ToFloat64(met.Reconciles("outcomes", result)); got != want {
					t.Errorf("%s reconciles = %v, want %v", result, got, want)
				}
			}
			// A terminal key is reconciled again when it changes, not before.
			put(t, s, "outcomes/term", "2")
			poll.Until(t, wait, "changed terminal key not reconciled", func() bool { return r.count("outcomes/term") == 2 })
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		})
	}
}

// TestStartedClosesWhenRunFailsEarly: a waiter on Started is not left
// hanging when Run cannot start (its health address is taken).
func TestStartedClosesWhenRunFailsEarly(t *testing.T) {
	m, err := controller.NewManager(controller.ManagerConfig{HealthAddr: "256.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctxFor(t, wait)); err == nil || !strings.Contains(err.Error(), "health server") {
		t.Errorf("Run = %v, want a health server error", err)
	}
	select {
	case <-m.Started():
	case <-time.After(wait):
		t.Fatal("Started not closed after Run failed")
	}
}

// TestAddRoutesInformersToEveryReplica: an informer given to Add runs on
// every replica (and reports in /readyz) instead of on the leader only.
func TestAddRoutesInformersToEveryReplica(t *testing.T) {
	s := newMemory(t)
	put(t, s, "apps/a", "1")
	m, err := controller.NewManager(controller.ManagerConfig{
		LeaderElection: &controller.LeaderElection{Store: s, Config: election.Config{Key: "routes", Identity: "x"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	inf, err := informer.New(s, informer.Config[string]{Prefix: "apps", Decode: decodeString})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Add(inf); err != nil {
		t.Fatal(err)
	}
	// A rival leads first: this replica never leads, yet its informer
	// must sync.
	rival, err := election.New(ctxFor(t, wait), s, election.Config{Key: "routes", Identity: "rival",
		Callbacks: election.Callbacks{OnStartedLeading: func(ctx context.Context) { <-ctx.Done() }}})
	if err != nil {
		t.Fatal(err)
	}
	background(t, "rival.Run", rival.Run, nil)
	poll.Until(t, wait, "the rival does not lead", rival.IsLeader)
	runManager(t, m)
	poll.Until(t, wait, "an informer added with Add did not run on a standby", inf.HasSynced)
	if m.IsLeader() {
		t.Error("the standby leads")
	}
}

// TestNewManagerValidatesTheElection: a bad election config is NewManager's
// error, not a failure of Run later.
func TestNewManagerValidatesTheElection(t *testing.T) {
	s := newMemory(t)
	for name, cfg := range map[string]election.Config{
		"no identity":          {Key: "leader"},
		"bad key":              {Key: "a//b", Identity: "a"},
		"deadline not below":   {Key: "leader", Identity: "a", TTL: 2 * time.Second, RenewDeadline: 2 * time.Second},
		"negative health time": {Key: "leader", Identity: "a", HealthTimeout: -time.Second},
	} {
		_, err := controller.NewManager(controller.ManagerConfig{LeaderElection: &controller.LeaderElection{Store: s, Config: cfg}})
		if !errors.Is(err, controller.ErrInvalidConfig) || !errors.Is(err, election.ErrInvalidConfig) {
			t.Errorf("%s: NewManager = %v; want controller.ErrInvalidConfig wrapping election.ErrInvalidConfig", name, err)
		}
	}
}

// TestElectorOnlyWhileRunning: the elector is the Manager's to run; it is
// handed out once Run runs it, never before.
func TestElectorOnlyWhileRunning(t *testing.T) {
	le := &controller.LeaderElection{Store: newMemory(t), Config: election.Config{Key: "leader", Identity: "a", TTL: 2 * time.Second}}
	m, err := controller.NewManager(controller.ManagerConfig{LeaderElection: le})
	if err != nil {
		t.Fatal(err)
	}
	if m.Elector() != nil {
		t.Error("Elector before Run: want nil")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-m.Started()
	if m.Elector() == nil {
		t.Error("Elector while running: nil")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
