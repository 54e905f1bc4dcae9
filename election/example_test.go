package election_test

import (
	"context"
	"fmt"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/kv/memory"
)

func Example() {
	store := memory.New()
	defer func() { _ = store.Close() }()
	ctx, cancel := context.WithCancel(context.Background())

	e, err := election.New(ctx, store, election.Config{
		Key:      "jobs/nightly",
		Identity: "worker-1",
		Callbacks: election.Callbacks{
			OnStartedLeading: func(ctx context.Context) {
				term, _ := election.TermFrom(ctx)
				fmt.Println("leading, fenced writes through term", term.Token > 0)
				// Writes the server refuses once this term is over.
				_ = term.GuardedPut(ctx, "jobs/nightly/last-run", []byte("today"), nil)
				cancel() // done: step down (Run releases at once)
			},
			OnStoppedLeading: func() { fmt.Println("stopped leading") },
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Run:", e.Run(ctx))
	p, _ := store.Get(context.Background(), "jobs/nightly/last-run", nil)
	fmt.Println("last run:", string(p.Value))
	// Output:
	// leading, fenced writes through term true
	// stopped leading
	// Run: <nil>
	// last run: today
}
