package controller_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/regentkv/regent/controller"
	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv/memory"
)

// A reconciler that scales "deployments" to the replica count stored under
// replicas/, run by a Manager that elects one leader among the replicas of
// this program (here, one) and fences its writes.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	store := memory.New()
	defer func() { _ = store.Close() }()
	_ = store.Put(ctx, "replicas/web", []byte("3"), nil)

	mgr, _ := controller.NewManager(controller.ManagerConfig{
		LeaderElection: &controller.LeaderElection{Store: store,
			Config: election.Config{Key: "elections/scaler", Identity: "replica-1"}},
	})
	replicas, _ := controller.NewInformer(mgr, store, informer.Config[int]{
		Prefix: "replicas",
		Decode: func(_ string, v []byte) (int, error) { return strconv.Atoi(string(v)) },
	})
	reconciled := make(chan string)
	scaler, _ := controller.New(controller.Config[int]{
		Name:     "scaler",
		Informer: replicas,
		Reconciler: controller.ReconcileFunc[int](func(ctx context.Context, req controller.Request[int]) (controller.Result, error) {
			term, _ := election.TermFrom(ctx) // the leader's term: writes it makes are fenced
			status := "deployments/" + req.Key[len("replicas/"):]
			if !req.Exists {
				reconciled <- req.Key + " deleted: scale to 0"
				return controller.Result{}, term.GuardedDelete(ctx, status)
			}
			reconciled <- fmt.Sprintf("%s: scale to %d", req.Key, req.Object)
			return controller.Result{}, term.GuardedPut(ctx, status, []byte(strconv.Itoa(req.Object)), nil)
		}),
	})
	_ = mgr.Add(scaler)
	stopped := make(chan error)
	go func() { stopped <- mgr.Run(ctx) }()

	fmt.Println(<-reconciled)
	_ = store.Put(ctx, "replicas/web", []byte("5"), nil)
	fmt.Println(<-reconciled)
	_ = store.Delete(ctx, "replicas/web")
	fmt.Println(<-reconciled)

	cancel()
	fmt.Println("manager stopped:", <-stopped)
	// Output:
	// replicas/web: scale to 3
	// replicas/web: scale to 5
	// replicas/web deleted: scale to 0
	// manager stopped: <nil>
}

// Terminal errors are not retried: the key waits for its next change.
func ExampleTerminal() {
	err := controller.Terminal(errors.New("replicas must be positive"))
	fmt.Println(err)
	fmt.Println(controller.IsTerminal(fmt.Errorf("reconcile web: %w", err)))
	// Output:
	// terminal: replicas must be positive
	// true
}
