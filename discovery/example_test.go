package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regentkv/regent/discovery"
	"github.com/regentkv/regent/kv/memory"
)

// Two instances register; a watcher lists them, then sees one leave.
func Example() {
	ctx := context.Background()
	backend := memory.NewBackend()
	defer backend.Close()
	processA, processB, client := backend.Client(), backend.Client(), backend.Client()
	defer func() { _ = processA.Close() }()
	defer func() { _ = processB.Close() }()
	defer func() { _ = client.Close() }()

	opts := &discovery.RegisterOptions{TTL: 10 * time.Second}
	a, err := discovery.Register(ctx, processA, "payments", discovery.Instance{ID: "a", Address: "127.0.0.1:9001"}, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := discovery.Register(ctx, processB, "payments", discovery.Instance{ID: "b", Address: "127.0.0.1:9002"}, opts); err != nil {
		fmt.Println(err)
		return
	}

	changes := make(chan []discovery.Instance, 8)
	w, err := discovery.NewWatcher(client, "payments", &discovery.WatchOptions{
		OnChange: func(is []discovery.Instance) { changes <- is },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			fmt.Println(err)
		}
	}()

	for _, i := range <-changes {
		fmt.Println(i.ID, i.Address)
	}
	if err := a.Deregister(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("after a leaves:", len(<-changes), "instance")
	// Output:
	// a 127.0.0.1:9001
	// b 127.0.0.1:9002
	// after a leaves: 1 instance
}
