package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/etcd/embedded"
)

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv, err := embedded.Start(ctx) // or skip this and give your cluster's endpoints
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer func() { _ = srv.Close() }()

	s, err := etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints(), Root: "example"})
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	defer func() { _ = s.Close() }()

	if err := s.Put(ctx, "config/color", []byte("blue"), nil); err != nil {
		fmt.Println("put:", err)
		return
	}
	p, err := s.Get(ctx, "config/color", nil)
	if err != nil {
		fmt.Println("get:", err)
		return
	}
	fmt.Printf("%s = %s\n", p.Key, p.Value)

	// Compare-and-swap against the version just read.
	ok, _, err := s.AtomicPut(ctx, "config/color", []byte("green"), p, nil)
	fmt.Println("swapped:", ok, err)
	_, _, err = s.AtomicPut(ctx, "config/color", []byte("red"), p, nil)
	fmt.Println("stale swap:", err != nil && errors.Is(err, kv.ErrKeyModified))
	// Output:
	// config/color = blue
	// swapped: true <nil>
	// stale swap: true
}

func Example_watch() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer func() { _ = srv.Close() }()
	s, err := etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	defer func() { _ = s.Close() }()

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	updates, err := s.Watch(wctx, "leader", nil)
	if err != nil {
		fmt.Println("watch:", err)
		return
	}
	u := <-updates // the current state first: missing
	fmt.Println("exists:", u.Pair != nil)

	_ = s.Put(ctx, "leader", []byte("node-1"), nil)
	u = <-updates
	fmt.Printf("leader: %s\n", u.Pair.Value)

	_ = s.Delete(ctx, "leader")
	u = <-updates
	fmt.Println("exists:", u.Pair != nil)
	// Output:
	// exists: false
	// leader: node-1
	// exists: false
}

func Example_lock() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer func() { _ = srv.Close() }()
	s, err := etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	defer func() { _ = s.Close() }()

	l, err := s.NewLock(ctx, "jobs/nightly", &kv.LockOptions{Value: []byte("worker-1")})
	if err != nil {
		fmt.Println("new lock:", err)
		return
	}
	lost, err := l.Lock(ctx)
	if err != nil {
		fmt.Println("lock:", err)
		return
	}
	// Writes that must not come from a deposed holder go through the lock.
	err = l.GuardedPut(ctx, "jobs/nightly/last-run", []byte("today"), nil)
	fmt.Println("guarded put:", err, "token > 0:", l.Token() > 0)

	_ = l.Unlock(ctx)
	<-lost // closed by Unlock (or when the lock is lost)
	fmt.Println("released")
	// Output:
	// guarded put: <nil> token > 0: true
	// released
}
