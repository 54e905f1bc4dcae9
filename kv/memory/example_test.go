package memory_test

import (
	"context"
	"fmt"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
)

func Example() {
	ctx := context.Background()
	s := memory.New()
	defer func() { _ = s.Close() }()

	if err := s.Put(ctx, "config/color", []byte("blue"), nil); err != nil {
		panic(err)
	}
	p, err := s.Get(ctx, "/config/color/", nil) // any form of the key
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s = %s\n", p.Key, p.Value)

	_, err = s.Get(ctx, "config/size", nil)
	fmt.Println(err)
	// Output:
	// config/color = blue
	// memory: get "config/size": kv: key not found
}

func ExampleStore_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	s := memory.New()
	defer func() { _ = s.Close() }()

	ch, err := s.Watch(ctx, "leader", nil)
	if err != nil {
		panic(err)
	}
	show := func(u kv.KeyUpdate) {
		if u.Pair == nil {
			fmt.Println("no leader")
			return
		}
		fmt.Printf("leader is %s\n", u.Pair.Value)
	}
	show(<-ch) // the current state first: missing
	_ = s.Put(ctx, "leader", []byte("node-1"), nil)
	show(<-ch)
	_ = s.Delete(ctx, "leader")
	show(<-ch)

	cancel()
	for range ch { // closed by the store once ctx has ended
	}
	fmt.Println("watch closed")
	// Output:
	// no leader
	// leader is node-1
	// no leader
	// watch closed
}

func ExampleBackend() {
	ctx := context.Background()
	b := memory.NewBackend()
	defer b.Close()
	alice, bob := b.Client(), b.Client()
	defer func() { _ = alice.Close() }()
	defer func() { _ = bob.Close() }()

	la, _ := alice.NewLock(ctx, "jobs/nightly", nil)
	lb, _ := bob.NewLock(ctx, "jobs/nightly", nil)

	lost, err := la.Lock(ctx)
	if err != nil {
		panic(err)
	}
	_, err = lb.TryLock(ctx)
	fmt.Println("bob:", err)

	// Writes that must not come from a deposed holder go through the lock.
	_ = la.GuardedPut(ctx, "jobs/nightly/last-run", []byte("today"), nil)
	first := la.Token()

	_ = la.Unlock(ctx)
	<-lost // closed on Unlock (or on loss)
	if _, err := lb.Lock(ctx); err != nil {
		panic(err)
	}
	fmt.Println("bob holds it, newer token:", lb.Token() > first)
	fmt.Println("alice:", la.GuardedPut(ctx, "jobs/nightly/last-run", []byte("again"), nil))
	_ = lb.Unlock(ctx)
	// Output:
	// bob: memory: lock "jobs/nightly": kv: lock held by another owner
	// bob holds it, newer token: true
	// alice: memory: guarded put: lock "jobs/nightly": kv: lock not held
}
