package controller_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regentkv/regent/controller"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv/memory"
)

// runManager runs m until the test ends and checks Run's result then.
func runManager(t *testing.T, m *controller.Manager) {
	t.Helper()
	background(t, "Manager.Run", m.Run, nil)
	select {
	case <-m.Started():
	case <-time.After(wait):
		t.Fatal("manager did not start")
	}
}

// TestHealthEndpoints: real HTTP requests to /readyz, /healthz and
// /metrics: readiness follows the informers (not synced, synced, stale),
// liveness stays up, and /metrics serves every layer's metrics.
func TestHealthEndpoints(t *testing.T) {
	b := memory.NewBackend()
	t.Cleanup(b.Close)
	s := b.Client()
	t.Cleanup(func() { _ = s.Close() })
	put(t, s, "apps/a", "1")
	down := b.Client()
	down.Kill() // a store that cannot be reached: its informer never syncs

	m, err := controller.NewManager(controller.ManagerConfig{HealthAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	apps, err := controller.NewInformer(m, s, informer.Config[string]{Prefix: "apps", Decode: decodeString})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controller.NewInformer(m, down, informer.Config[string]{Name: "unreachable", Prefix: "other", Decode: decodeString,
		Backoff: informer.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	c := newController(t, controller.Config[string]{Name: "apps", Informer: apps, Reconciler: newRecorder(nil)})
	if err := m.Add(c); err != nil {
		t.Fatal(err)
	}
	m.AddHealthzCheck("custom", func() error { return nil })
	runManager(t, m)
	base := "http://" + m.Addr().String()

	poll.Until(t, wait, "/readyz did not name the informer that cannot sync", func() bool {
		code, body := get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable &&
			strings.Contains(body, "[-]informer:unreachable failed: informer: cache not synced") &&
			strings.Contains(body, "not reachable") && strings.Contains(body, "[+]informer:/apps ok")
	})
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, base+"/healthz?verbose"); code != http.StatusOK || !strings.Contains(body, "[+]custom ok") {
		t.Errorf("/healthz?verbose = %d %q, want the custom check listed", code, body)
	}
	poll.Until(t, wait, "the controller did not reconcile", func() bool {
		_, body := get(t, base+"/metrics")
		return strings.Contains(body, `regent_controller_reconcile_total{controller="apps",result="success"} 1`)
	})
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`regent_informer_events_total{informer="/apps",type="add"} 1`,
		`workqueue_adds_total{name="apps"} 1`,
		`regent_controller_max_concurrent_reconciles{controller="apps"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The apps store goes away: its cache turns stale and /readyz says so.
	s.Kill()
	poll.Until(t, wait, "/readyz did not report the stale cache", func() bool {
		_, body := get(t, base+"/readyz")
		return strings.Contains(body, "[-]informer:/apps failed: informer: cache stale")
	})
}

// TestShutdownTimeout: a runnable that ignores its ctx makes Run give up
// after ShutdownTimeout and name it; well-behaved ones stop in time.
func TestShutdownTimeout(t *testing.T) {
	m, err := controller.NewManager(controller.ManagerConfig{ShutdownTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	hung := make(chan struct{})
	if err := m.Add(named{"stubborn", controller.RunnableFunc(func(context.Context) error {
		defer close(hung)
		<-release
		return nil
	})}); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(controller.OnEveryReplica(named{"polite", controller.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	})})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-m.Started()
	cancel()
	err = <-done
	close(release)
	<-hung
	if !errors.Is(err, controller.ErrShutdownTimeout) || !strings.Contains(err.Error(), "still running: [stubborn]") {
		t.Errorf("Run = %v, want ErrShutdownTimeout naming only stubborn", err)
	}
}

// TestRunnableFailureStopsTheManager: one runnable's error cancels the
// others and is what Run returns.
func TestRunnableFailureStopsTheManager(t *testing.T) {
	m, err := controller.NewManager(controller.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("cannot reach the payment API")
	if err := m.Add(named{"failing", controller.RunnableFunc(func(context.Context) error { return boom })}); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	if err := m.Add(controller.OnEveryReplica(named{"bystander", controller.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return nil
	})})); err != nil {
		t.Fatal(err)
	}
	err = m.Run(ctxFor(t, wait))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "runnable failing") {
		t.Errorf("Run = %v, want the failing runnable's error, named", err)
	}
	if cause := <-stopped; !errors.Is(cause, boom) {
		t.Errorf("bystander's ctx cause = %v, want the failure", cause)
	}
	if err := m.Run(ctxFor(t, wait)); !errors.Is(err, controller.ErrAlreadyRunning) {
		t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
	}
}

// TestManagerRefusesBadAdds: duplicate names and late adds are errors.
func TestManagerRefusesBadAdds(t *testing.T) {
	m, err := controller.NewManager(controller.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	noop := controller.RunnableFunc(func(ctx context.Context) error { <-ctx.Done(); return nil })
	if err := m.Add(named{"job", noop}); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(controller.OnEveryReplica(named{"job", noop})); !errors.Is(err, controller.ErrInvalidConfig) {
		t.Errorf("duplicate name: %v, want ErrInvalidConfig", err)
	}
	runManager(t, m)
	if !m.IsLeader() {
		t.Errorf("IsLeader false without an election")
	}
	if err := m.Add(named{"late", noop}); !errors.Is(err, controller.ErrStarted) {
		t.Errorf("Add after Run: %v, want ErrStarted", err)
	}
	if _, err := controller.NewManager(controller.ManagerConfig{LeaderElection: &controller.LeaderElection{}}); !errors.Is(err, controller.ErrInvalidConfig) {
		t.Errorf("election without a store: %v, want ErrInvalidConfig", err)
	}
}

type named struct {
	name string
	controller.Runnable
}

func (n named) Name() string { return n.name }
