package election

import (
	"context"
	"testing"
	"time"

	"github.com/regentkv/regent/kv/memory"
)

// TestResignTargetsItsOwnTerm: a Resign that read term 1 must not end term
// 2 when term 1 ended on its own (here: its callback returned) and term 2
// began before the Resign got to signal. Resign promises to end "the current
// term"; ending the next one hands leadership away for nothing.
func TestResignTargetsItsOwnTerm(t *testing.T) {
	b := memory.NewBackend()
	defer b.Close()
	s := b.Client()
	defer func() { _ = s.Close() }()

	type started struct {
		ctx  context.Context
		term *Term
	}
	starts := make(chan started, 4)
	finish1 := make(chan struct{})
	first := true
	e, err := New(context.Background(), s, Config{Key: "resign-race", Identity: "a", TTL: 100 * time.Millisecond,
		Callbacks: Callbacks{OnStartedLeading: func(ctx context.Context) {
			term, _ := TermFrom(ctx)
			starts <- started{ctx, term}
			if first { // only Run's goroutine runs this: terms never overlap
				first = false
				<-finish1
				return
			}
			<-ctx.Done()
		}}})
	if err != nil {
		t.Fatal(err)
	}
	entered, proceed := make(chan *Term, 1), make(chan struct{})
	e.resignHook = func(term *Term) { entered <- term; <-proceed }

	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	wait := func(what string) started {
		t.Helper()
		select {
		case st := <-starts:
			return st
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no term started within 10s", what)
		}
		return started{}
	}
	t1 := wait("term 1")
	resigned := make(chan error, 1)
	go func() { resigned <- e.Resign(context.Background()) }()
	if got := <-entered; got != t1.term {
		t.Fatalf("Resign read term %d, want term 1 (%d)", got.Token, t1.term.Token)
	}
	close(finish1) // term 1 ends by itself while Resign is between read and signal
	t2 := wait("term 2")
	close(proceed)
	if err := <-resigned; err != nil {
		t.Fatalf("Resign: %v", err)
	}
	// Term 2 was not the one Resign was asked to end: it must go on. A stale
	// request ends it at once, so a short wait is enough to catch it.
	select {
	case <-t2.ctx.Done():
		t.Fatalf("term 2 (token %d) ended by a Resign meant for term 1 (token %d): %v",
			t2.term.Token, t1.term.Token, context.Cause(t2.ctx))
	case <-time.After(500 * time.Millisecond):
	}
	if !e.IsLeader() {
		t.Fatal("not leading after a Resign of an already-ended term")
	}
}
