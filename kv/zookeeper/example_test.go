package zookeeper_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/zookeeper"
)

// The examples run against the test server started by TestMain; in a
// program, Servers would be something like []string{"zk1:2181", "zk2:2181"}.

func Example() {
	ctx := context.Background()
	s, err := zookeeper.New(ctx, zookeeper.Config{Servers: server.Servers(), Root: "/example/basic"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = s.Close() }()
	if err := s.DeleteTree(ctx, ""); err != nil { // a clean slate on re-runs
		fmt.Println(err)
		return
	}

	for _, k := range []string{"config/db/host", "config/db/port", "configuration"} {
		if err := s.Put(ctx, k, []byte("v-"+k), nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	// "config/db" exists as a znode but is a directory, not a key, and
	// "configuration" is not below "config".
	pairs, err := s.List(ctx, "config", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range pairs {
		fmt.Printf("%s = %s\n", p.Key, p.Value)
	}
	_, err = s.Get(ctx, "config/db", nil)
	fmt.Println(err)
	// Output:
	// config/db/host = v-config/db/host
	// config/db/port = v-config/db/port
	// zookeeper: get "config/db": kv: key not found
}

func ExampleStore_AtomicPut() {
	ctx := context.Background()
	s, err := zookeeper.New(ctx, zookeeper.Config{Servers: server.Servers(), Root: "/example/cas"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = s.Close() }()
	if err := s.DeleteTree(ctx, ""); err != nil { // a clean slate on re-runs
		fmt.Println(err)
		return
	}

	_, first, err := s.AtomicPut(ctx, "counter", []byte("1"), nil, nil)
	fmt.Println("create:", err)
	_, _, err = s.AtomicPut(ctx, "counter", []byte("1"), nil, nil)
	fmt.Println("create again, key exists:", errors.Is(err, kv.ErrKeyExists))
	_, _, err = s.AtomicPut(ctx, "counter", []byte("2"), first, nil)
	fmt.Println("swap from the first version:", err)
	_, _, err = s.AtomicPut(ctx, "counter", []byte("3"), first, nil)
	fmt.Println("swap from a stale version, key modified:", errors.Is(err, kv.ErrKeyModified))
	// Output:
	// create: <nil>
	// create again, key exists: true
	// swap from the first version: <nil>
	// swap from a stale version, key modified: true
}

func ExampleStore_NewLock() {
	ctx := context.Background()
	s, err := zookeeper.New(ctx, zookeeper.Config{Servers: server.Servers(), Root: "/example/lock"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = s.Close() }()
	if err := s.DeleteTree(ctx, ""); err != nil { // a clean slate on re-runs
		fmt.Println(err)
		return
	}

	l, err := s.NewLock(ctx, "jobs/nightly", &kv.LockOptions{Value: []byte("worker-1")})
	if err != nil {
		fmt.Println(err)
		return
	}
	lost, err := l.Lock(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("fencing token issued:", l.Token() > 0)
	// A write that the server applies only while this lock is held.
	fmt.Println("guarded put:", l.GuardedPut(ctx, "jobs/nightly/state", []byte("running"), nil))
	if err := l.Unlock(ctx); err != nil {
		fmt.Println(err)
		return
	}
	<-lost // Unlock closes it, as a loss would
	fmt.Println("guarded put after unlock:", l.GuardedPut(ctx, "jobs/nightly/state", []byte("late"), nil))
	// Output:
	// fencing token issued: true
	// guarded put: <nil>
	// guarded put after unlock: zookeeper: lock "jobs/nightly": kv: lock not held
}

func ExampleStore_Watch() {
	s, err := zookeeper.New(context.Background(), zookeeper.Config{Servers: server.Servers(), Root: "/example/watch"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = s.Close() }()
	// Ending ctx (deferred after Close, so it runs first) ends the watch.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.DeleteTree(ctx, ""); err != nil { // a clean slate on re-runs
		fmt.Println(err)
		return
	}

	updates, err := s.Watch(ctx, "leader", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	u := <-updates
	fmt.Println("initial:", u.Pair)
	if err := s.Put(ctx, "leader", []byte("node-a"), nil); err != nil {
		fmt.Println(err)
		return
	}
	u = <-updates
	fmt.Println("after put:", string(u.Pair.Value))
	if err := s.Delete(ctx, "leader"); err != nil {
		fmt.Println(err)
		return
	}
	u = <-updates
	fmt.Println("after delete:", u.Pair)
	// Output:
	// initial: <nil>
	// after put: node-a
	// after delete: <nil>
}
