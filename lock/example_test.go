package lock_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
	"github.com/regentkv/regent/lock"
)

func ExampleDo() {
	store := memory.New()
	defer func() { _ = store.Close() }()
	ctx := context.Background()

	// Run a job while holding the lock; its ctx ends if the lock is lost,
	// and its writes are fenced: the server refuses them once the lock has
	// passed on.
	err := lock.Do(ctx, store, "jobs/nightly", func(ctx context.Context, token uint64) error {
		fmt.Println("holding the lock, token > 0:", token > 0)
		return nil
	})
	fmt.Println("done:", err)
	// Output:
	// holding the lock, token > 0: true
	// done: <nil>
}

func ExampleMutex_GuardedPut() {
	backend := memory.NewBackend()
	defer backend.Close()
	a, b := backend.Client(), backend.Client()
	defer func() { _ = a.Close() }()
	defer func() { _ = b.Close() }()
	ctx := context.Background()

	ma, _ := lock.New(ctx, a, "reports/lock")
	mb, _ := lock.New(ctx, b, "reports/lock")
	_ = ma.Lock(ctx)
	fmt.Println("a writes:", ma.GuardedPut(ctx, "reports/today", []byte("a"), nil))
	_ = ma.Unlock(ctx)
	_ = mb.Lock(ctx)
	err := ma.GuardedPut(ctx, "reports/today", []byte("late a"), nil)
	fmt.Println("a's late write refused:", errors.Is(err, kv.ErrNotLocked))
	fmt.Println("b's token is newer:", mb.Token() > 0)
	_ = mb.Unlock(ctx)
	// Output:
	// a writes: <nil>
	// a's late write refused: true
	// b's token is newer: true
}
