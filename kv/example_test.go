package kv_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
)

// One contract, one set of typed errors, whatever the backend: this runs
// the same against etcd, Consul or ZooKeeper (here, the in-process store).
func Example() {
	ctx := context.Background()
	var store kv.Store = memory.New()
	defer func() { _ = store.Close() }()

	_ = store.Put(ctx, "/config/app/", []byte(`{"replicas":3}`), nil)
	p, _ := store.Get(ctx, "config/app", nil) // one canonical key form
	fmt.Printf("%s = %s\n", p.Key, p.Value)

	_, err := store.Get(ctx, "config/missing", nil)
	fmt.Println("missing:", errors.Is(err, kv.ErrKeyNotFound))

	// Compare-and-swap: a writer holding a stale version loses.
	_, _, _ = store.AtomicPut(ctx, p.Key, []byte(`{"replicas":4}`), p, nil)
	_, _, err = store.AtomicPut(ctx, p.Key, []byte(`{"replicas":5}`), p, nil)
	fmt.Println("stale CAS:", errors.Is(err, kv.ErrKeyModified))

	err = store.Put(ctx, "config/empty", nil, nil)
	fmt.Println("nil value:", errors.Is(err, kv.ErrNilValue))
	// Output:
	// config/app = {"replicas":3}
	// missing: true
	// stale CAS: true
	// nil value: true
}

// Keys are slash-separated paths; one normal form, and bad keys are typed
// errors.
func ExampleNormalizeKey() {
	for _, k := range []string{"/apps/web/", "apps//web", "apps/../web", "__regent/x"} {
		n, err := kv.NormalizeKey(k)
		fmt.Printf("%q -> %q invalid=%v\n", k, n, errors.Is(err, kv.ErrInvalidKey))
	}
	// Output:
	// "/apps/web/" -> "apps/web" invalid=false
	// "apps//web" -> "" invalid=true
	// "apps/../web" -> "" invalid=true
	// "__regent/x" -> "" invalid=true
}

// A watch starts with the current state and reports a delete as an update
// with a nil Pair: never a silently closed channel.
func ExampleStore_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := memory.New()
	defer func() { _ = store.Close() }()

	updates, _ := store.Watch(ctx, "flags/beta", nil)
	show := func(u kv.KeyUpdate) {
		if u.Pair == nil {
			fmt.Println("absent")
			return
		}
		fmt.Printf("%s\n", u.Pair.Value)
	}
	show(<-updates)
	_ = store.Put(ctx, "flags/beta", []byte("on"), nil)
	show(<-updates)
	_ = store.Delete(ctx, "flags/beta")
	show(<-updates)
	// Output:
	// absent
	// on
	// absent
}
