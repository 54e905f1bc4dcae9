package informer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv/memory"
	"github.com/regentkv/regent/workqueue"
)

type Service struct {
	Port int    `json:"port"`
	Team string `json:"team"`
}

func decodeService(_ string, v []byte) (Service, error) {
	var s Service
	err := json.Unmarshal(v, &s)
	return s, err
}

// A cache of JSON services, indexed by team, with a handler and
// read-your-writes.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := memory.New()
	defer func() { _ = store.Close() }()
	_ = store.Put(ctx, "services/web", []byte(`{"port":80,"team":"edge"}`), nil)
	_ = store.Put(ctx, "services/db", []byte(`{"port":5432,"team":"data"}`), nil)

	inf, _ := informer.New(store, informer.Config[Service]{
		Prefix: "services",
		Decode: decodeService,
		Indexers: map[string]informer.IndexFunc[Service]{
			"team": func(_ string, s Service) ([]string, error) { return []string{s.Team}, nil },
		},
	})
	updates := make(chan string, 10)
	reg, _ := inf.AddEventHandler(informer.Handler[Service]{
		OnUpdate: func(key string, old, new Service) {
			updates <- fmt.Sprintf("%s: port %d -> %d", key, old.Port, new.Port)
		},
	})
	done := make(chan error)
	go func() { done <- inf.Run(ctx) }()
	if err := inf.WaitForCacheSync(ctx); err != nil {
		fmt.Println(err)
		return
	}
	<-reg.Synced() // the handler has had the first list: it sees what follows as changes
	web, _ := inf.Get("services/web")
	fmt.Println("web port:", web.Port)
	edge, _ := inf.IndexKeys("team", "edge")
	fmt.Println("team edge:", edge)

	_ = store.Put(ctx, "services/web", []byte(`{"port":8080,"team":"edge"}`), nil)
	rev, _ := store.Revision(ctx)
	_ = inf.WaitForRevision(ctx, rev) // read-your-writes
	web, _ = inf.Get("services/web")
	fmt.Println("web port after the write:", web.Port)
	fmt.Println(<-updates)

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		fmt.Println("Run:", err)
	}
	// Output:
	// web port: 80
	// team edge: [services/web]
	// web port after the write: 8080
	// services/web: port 80 -> 8080
}

// The reconciler pattern: every changed key lands in a work queue, and a
// worker reads the key's latest state from the cache.
func ExampleEnqueueKeys() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := memory.New()
	defer func() { _ = store.Close() }()
	_ = store.Put(ctx, "services/web", []byte(`{"port":80}`), nil)

	inf, _ := informer.New(store, informer.Config[Service]{Prefix: "services", Decode: decodeService})
	q := workqueue.New(workqueue.Config[string]{})
	defer q.ShutDown()
	_, _ = informer.EnqueueKeys(inf, q)
	done := make(chan error)
	go func() { done <- inf.Run(ctx) }()

	key, _ := q.Get()
	svc, ok := inf.Get(key)
	fmt.Println("reconcile", key, svc.Port, ok)
	q.Done(key)

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		fmt.Println("Run:", err)
	}
	// Output:
	// reconcile services/web 80 true
}
