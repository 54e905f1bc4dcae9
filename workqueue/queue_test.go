package workqueue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/regentkv/regent/workqueue"
)

func newQueue[T comparable]() *workqueue.Queue[T] {
	return workqueue.New(workqueue.Config[T]{})
}

func mustGet[T comparable](t *testing.T, q *workqueue.Queue[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	item, err := q.GetCtx(ctx)
	if err != nil {
		t.Fatalf("GetCtx: %v", err)
	}
	return item
}

func TestAddsCollapse(t *testing.T) {
	q := newQueue[string]()
	defer q.ShutDown()
	for range 5 {
		q.Add("a")
	}
	if got := q.Len(); got != 1 {
		t.Fatalf("Len after 5 adds of one item = %d, want 1", got)
	}
	if got := mustGet(t, q); got != "a" {
		t.Fatalf("Get = %q, want a", got)
	}
	q.Done("a")
	if got := q.Len(); got != 0 {
		t.Fatalf("Len after processing = %d, want 0 (the adds collapsed into one)", got)
	}
}

func TestFIFOAmongDistinctItems(t *testing.T) {
	q := newQueue[int]()
	defer q.ShutDown()
	// Enough items to wrap and grow the ring several times.
	const n = 1000
	for i := range n {
		q.Add(i)
		if i%3 == 0 {
			q.Add(i / 2) // a duplicate of a pending item keeps its place
		}
	}
	for i := range n {
		if got := mustGet(t, q); got != i {
			t.Fatalf("Get #%d = %d, want %d", i, got, i)
		}
		q.Done(i)
	}
}

func TestAddDuringProcessingRequeuesAfterDone(t *testing.T) {
	q := newQueue[string]()
	defer q.ShutDown()
	q.Add("a")
	got := mustGet(t, q)
	q.Add("a")
	q.Add("a")
	if n := q.Len(); n != 0 {
		t.Fatalf("Len while a is processing = %d, want 0: a must not be handed to a second worker", n)
	}
	q.Add("b")
	if got := mustGet(t, q); got != "b" {
		t.Fatalf("Get = %q, want b (a is still being processed)", got)
	}
	q.Done(got)
	if n := q.Len(); n != 1 {
		t.Fatalf("Len after Done(a) = %d, want 1: a was added during processing", n)
	}
	if got := mustGet(t, q); got != "a" {
		t.Fatalf("Get = %q, want a", got)
	}
	q.Done("a")
	q.Done("b")
	if n := q.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
}

func TestGetBlocksUntilAdd(t *testing.T) {
	q := newQueue[int]()
	defer q.ShutDown()
	got := make(chan int, 1)
	go func() {
		item, shutdown := q.Get()
		if shutdown {
			t.Error("Get reported shutdown")
		}
		got <- item
	}()
	blocked(t, got, "Get on an empty queue")
	q.Add(7)
	if v := recv(t, got, "Get after Add"); v != 7 {
		t.Fatalf("Get = %d, want 7", v)
	}
	q.Done(7)
}

func TestGetCtx(t *testing.T) {
	q := newQueue[int]()
	defer q.ShutDown()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.GetCtx(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetCtx(cancelled) err = %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := q.GetCtx(ctx)
		errc <- err
	}()
	blocked(t, errc, "GetCtx on an empty queue")
	cancel()
	if err := recv(t, errc, "GetCtx after cancel"); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetCtx err = %v, want context.Canceled", err)
	}

	// A cancelled waiter must not swallow the wake-up of an Add.
	q.Add(1)
	if got := mustGet(t, q); got != 1 {
		t.Fatalf("Get = %d, want 1", got)
	}
	q.Done(1)
}

func TestShutDownHandsOutQueuedItemsThenReports(t *testing.T) {
	q := newQueue[string]()
	q.Add("a")
	q.Add("b")
	q.ShutDown()
	q.ShutDown() // idempotent
	if !q.ShuttingDown() {
		t.Fatal("ShuttingDown = false after ShutDown")
	}
	q.Add("c") // ignored: the queue is closing
	for _, want := range []string{"a", "b"} {
		got, shutdown := q.Get()
		if shutdown || got != want {
			t.Fatalf("Get = %q, %v; want %q, false", got, shutdown, want)
		}
		q.Done(got)
	}
	if got, shutdown := q.Get(); !shutdown {
		t.Fatalf("Get = %q, false; want shutdown (c was added after ShutDown)", got)
	}
	if _, err := q.GetCtx(context.Background()); !errors.Is(err, workqueue.ErrShutDown) {
		t.Fatalf("GetCtx err = %v, want ErrShutDown", err)
	}
}

func TestShutDownWakesBlockedGet(t *testing.T) {
	q := newQueue[int]()
	done := make(chan bool, 1)
	go func() {
		_, shutdown := q.Get()
		done <- shutdown
	}()
	blocked(t, done, "Get on an empty queue")
	q.ShutDown()
	if !recv(t, done, "Get after ShutDown") {
		t.Fatal("Get returned an item, want shutdown")
	}
}

// client-go returned from ShutDownWithDrain while items were still queued
// when no worker happened to be processing one. Drain waits for them.
func TestDrainWaitsForQueuedItems(t *testing.T) {
	q := newQueue[string]()
	q.Add("a")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := q.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with an unprocessed item = %v, want DeadlineExceeded", err)
	}
	if got := mustGet(t, q); got != "a" {
		t.Fatalf("Get = %q, want a", got)
	}
	q.Done("a")
	if err := q.Drain(context.Background()); err != nil {
		t.Fatalf("Drain of an empty queue = %v, want nil", err)
	}
}

func TestDrainWaitsForInFlightAndRequeuedItems(t *testing.T) {
	q := newQueue[string]()
	q.Add("a")
	q.Add("b")
	a := mustGet(t, q) // a is in flight
	q.Add("a")         // and dirty: it must run again before the drain ends

	drained := make(chan error, 1)
	go func() { drained <- q.Drain(context.Background()) }()
	eventually(t, 5*time.Second, q.ShuttingDown, "Drain to start")

	blocked(t, drained, "Drain with a and b pending")
	if got := mustGet(t, q); got != "b" {
		t.Fatalf("Get during drain = %q, want b", got)
	}
	q.Done("b")
	blocked(t, drained, "Drain with a in flight")

	// A worker asking now must wait, not see shutdown: a comes back on Done.
	next := make(chan string, 1)
	go func() {
		item, shutdown := q.Get()
		if shutdown {
			t.Error("Get reported shutdown while a was still due to run again")
		}
		next <- item
	}()
	q.Done(a)
	if got := recv(t, next, "re-queued a"); got != "a" {
		t.Fatalf("Get = %q, want a", got)
	}
	blocked(t, drained, "Drain with a in flight again")
	q.Done("a")
	if err := recv(t, drained, "Drain"); err != nil {
		t.Fatalf("Drain = %v, want nil", err)
	}
	if _, shutdown := q.Get(); !shutdown {
		t.Fatal("Get after drain: want shutdown")
	}
}

func TestShutDownAbortsDrain(t *testing.T) {
	q := newQueue[string]()
	q.Add("a")
	drained := make(chan error, 1)
	go func() { drained <- q.Drain(context.Background()) }()
	eventually(t, 5*time.Second, q.ShuttingDown, "Drain to start")
	q.ShutDown()
	if err := recv(t, drained, "Drain"); !errors.Is(err, workqueue.ErrDrainAborted) {
		t.Fatalf("Drain = %v, want ErrDrainAborted", err)
	}
}

func TestShutDownWithDrain(t *testing.T) {
	q := newQueue[int]()
	for i := range 10 {
		q.Add(i)
	}
	done := make(chan struct{})
	processed := 0
	go func() {
		defer close(done)
		for {
			item, shutdown := q.Get()
			if shutdown {
				return
			}
			processed++
			q.Done(item)
		}
	}()
	q.ShutDownWithDrain()
	recv(t, done, "worker exit")
	if processed != 10 {
		t.Fatalf("processed %d items before ShutDownWithDrain returned, want 10", processed)
	}
}

func TestDoneOnUnknownItemIsLoggedAndIgnored(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	q := workqueue.New(workqueue.Config[string]{Name: "q", Logger: zap.New(core)})
	defer q.ShutDown()
	q.Add("a")
	q.Done("a") // queued, not processing
	q.Done("x") // never added
	if got := logs.Len(); got != 2 {
		t.Fatalf("logged %d warnings, want 2", got)
	}
	if got := mustGet(t, q); got != "a" {
		t.Fatalf("Get = %q, want a: a stray Done must not drop a queued item", got)
	}
	q.Done("a")
}
