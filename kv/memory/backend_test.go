package memory_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/clock/clocktest"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestWithClockDrivesTTLExpiry is the package's one test of the public
// WithClock option with a clocktest fake, kept for users whose tests cannot
// run in a testing/synctest bubble: a TTL expires exactly when the given
// clock says so, not by the wall clock. Every other test of fake time here
// runs in a bubble instead.
func TestWithClockDrivesTTLExpiry(t *testing.T) {
	clk := clocktest.New(time.Unix(1e9, 0))
	s := memory.New(memory.WithClock(clk))
	defer func() { _ = s.Close() }()
	ctx := ctxT(t)
	if err := s.Put(ctx, "k", []byte("v"), &kv.WriteOptions{TTL: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	clk.Step(9 * time.Millisecond)
	if ok, _ := s.Exists(ctx, "k", nil); !ok {
		t.Fatalf("key gone after 9ms of a 10ms TTL")
	}
	clk.Step(time.Millisecond)
	if ok, _ := s.Exists(ctx, "k", nil); ok {
		t.Fatalf("key still there after its 10ms TTL")
	}
}

// TestKeepAliveAndLockExpireAfterKill runs in a testing/synctest bubble:
// the backend is made inside it, so its expiry timers run on the bubble's
// fake time. Each time.Sleep moves that time exactly, and synctest.Wait
// lets the timers that fired finish before the next check.
func TestKeepAliveAndLockExpireAfterKill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBackend()
		defer b.Close()
		a, other := b.Client(), b.Client()
		defer func() { _ = a.Close() }()
		defer func() { _ = other.Close() }()
		// No deadline: the test sleeps an hour of fake time, and a hang in
		// a bubble is reported as a deadlock anyway.
		ctx := t.Context()
		if err := a.Put(ctx, "svc/a", []byte("up"), &kv.WriteOptions{TTL: time.Second, KeepAlive: true}); err != nil {
			t.Fatal(err)
		}
		l, err := a.NewLock(ctx, "lock", &kv.LockOptions{TTL: 2 * time.Second, RenewDeadline: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		lost, err := l.Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sleep := func(d time.Duration) {
			time.Sleep(d)
			synctest.Wait() // the expiries due by now have run
		}
		sleep(time.Hour) // a live client keeps both however long
		if ok, _ := other.Exists(ctx, "svc/a", nil); !ok {
			t.Fatalf("KeepAlive key of a live client expired")
		}
		a.Kill()
		if _, err := a.Get(ctx, "svc/a", nil); !errors.Is(err, kv.ErrNotReachable) {
			t.Fatalf("Get on a killed client: %v, want %v", err, kv.ErrNotReachable)
		}
		isClosed := func(c <-chan struct{}) bool {
			select {
			case <-c:
				return true
			default:
				return false
			}
		}
		sleep(499 * time.Millisecond)
		if isClosed(lost) || l.Token() == 0 {
			t.Fatalf("holder gave up before its RenewDeadline")
		}
		sleep(time.Millisecond)
		if !isClosed(lost) || l.Token() != 0 {
			t.Fatalf("holder still believes it holds the lock at its RenewDeadline (token %d)", l.Token())
		}
		if err := l.GuardedPut(ctx, "x", []byte("v"), nil); !errors.Is(err, kv.ErrLockLost) {
			t.Fatalf("GuardedPut after giving up: %v, want %v", err, kv.ErrLockLost)
		}
		sleep(500 * time.Millisecond)
		if ok, _ := other.Exists(ctx, "svc/a", nil); ok {
			t.Fatalf("KeepAlive key still there one TTL after the kill")
		}
		ol, _ := other.NewLock(ctx, "lock", nil)
		if _, err := ol.TryLock(ctx); !errors.Is(err, kv.ErrLockHeld) {
			t.Fatalf("TryLock 1s into a 2s lock TTL: %v, want %v", err, kv.ErrLockHeld)
		}
		sleep(time.Second)
		if _, err := ol.TryLock(ctx); err != nil {
			t.Fatalf("TryLock after the lock TTL: %v", err)
		}
	})
}

func TestNewLockRenewDeadline(t *testing.T) {
	s := memory.New()
	defer func() { _ = s.Close() }()
	for _, o := range []kv.LockOptions{
		{TTL: time.Second, RenewDeadline: time.Second},
		{TTL: time.Second, RenewDeadline: -time.Millisecond},
		{RenewDeadline: memory.DefaultLockTTL},
	} {
		if _, err := s.NewLock(ctxT(t), "l", &o); !errors.Is(err, kv.ErrInvalidTTL) {
			t.Errorf("NewLock(%+v) = %v, want %v", o, err, kv.ErrInvalidTTL)
		}
	}
}

func TestKillEndsStreamsWithNotReachable(t *testing.T) {
	s := memory.New()
	defer func() { _ = s.Close() }()
	ctx := ctxT(t)
	ch, err := s.Watch(ctx, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	s.Kill()
	u := <-ch
	if !errors.Is(u.Err, kv.ErrNotReachable) {
		t.Fatalf("update after Kill: %+v, want Err %v", u, kv.ErrNotReachable)
	}
	if _, ok := <-ch; ok {
		t.Fatalf("channel open after the terminal update")
	}
}

// TestSlowEventsReaderDoesNotBlockWriters: a subscriber that reads nothing
// while the history limit is overrun gets ErrCompacted when it resumes, and
// writers never waited for it.
func TestSlowEventsReaderDoesNotBlockWriters(t *testing.T) {
	s := memory.New(memory.WithHistoryLimit(8))
	defer func() { _ = s.Close() }()
	ctx := ctxT(t)
	ch, err := s.Events(ctx, "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 { // would deadlock if a write waited for the reader
		if err := s.Put(ctx, "p/"+strconv.Itoa(i), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	var ce *kv.CompactedError
	for b := range ch {
		if b.Err != nil {
			if !errors.As(b.Err, &ce) {
				t.Fatalf("terminal error %v, want a *kv.CompactedError", b.Err)
			}
			break
		}
	}
	if ce == nil {
		t.Fatalf("stream ended without ErrCompacted")
	}
	if _, ok := <-ch; ok {
		t.Fatalf("channel open after ErrCompacted")
	}
}

// TestLaggingWatcherResyncs: a watcher that falls behind the history limit
// gets the current state next instead of an error.
func TestLaggingWatcherResyncs(t *testing.T) {
	s := memory.New(memory.WithHistoryLimit(4))
	defer func() { _ = s.Close() }()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel() // before Close: the watches are left unread
	ch, err := s.WatchTree(ctx, "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	tch, err := s.Watch(ctx, "p/0", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	<-tch
	for i := range 50 {
		if err := s.Put(ctx, "p/"+strconv.Itoa(i%3), []byte(strconv.Itoa(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	var last kv.TreeUpdate
	for last.Err == nil && (len(last.Pairs) != 3 || string(last.Pairs[0].Value) != "48") {
		var ok bool
		if last, ok = <-ch; !ok {
			t.Fatalf("WatchTree closed before catching up")
		}
	}
	if last.Err != nil {
		t.Fatalf("lagging WatchTree: %v", last.Err)
	}
	var u kv.KeyUpdate
	for u.Err == nil && (u.Pair == nil || string(u.Pair.Value) != "48") {
		var ok bool
		if u, ok = <-tch; !ok {
			t.Fatalf("Watch closed before catching up")
		}
	}
	if u.Err != nil {
		t.Fatalf("lagging Watch: %v", u.Err)
	}
}

func TestBackendCloseIdempotent(t *testing.T) {
	b := memory.NewBackend()
	s := b.Client()
	if err := s.Put(ctxT(t), "k", []byte("v"), &kv.WriteOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEventsBatchesNeverSplitARevision: a catching-up subscriber gets
// bounded batches, but all the changes of one revision (a DeleteTree) in
// the same batch, so a batch's Revision is always fully delivered.
func TestEventsBatchesNeverSplitARevision(t *testing.T) {
	s := memory.New()
	defer func() { _ = s.Close() }()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel() // before Close: the stream is left unread
	const n = 600
	for i := range n {
		if err := s.Put(ctx, "p/"+strconv.Itoa(i), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteTree(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Events(ctx, "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]uint64{} // event revision -> batch revision
	puts, dels, batches := 0, 0, 0
	for puts+dels < 2*n {
		b, ok := <-ch
		if !ok || b.Err != nil {
			t.Fatalf("stream ended early (open %t): %v", ok, b.Err)
		}
		batches++
		for _, ev := range b.Events {
			if prev, ok := seen[ev.Pair.Revision]; ok && prev != b.Revision {
				t.Fatalf("revision %d split across batches %d and %d", ev.Pair.Revision, prev, b.Revision)
			}
			if ev.Pair.Revision > b.Revision {
				t.Fatalf("event at %d in a batch up to %d", ev.Pair.Revision, b.Revision)
			}
			seen[ev.Pair.Revision] = b.Revision
			if ev.Type == kv.EventPut {
				puts++
			} else {
				dels++
			}
		}
	}
	if puts != n || dels != n || batches < 3 {
		t.Fatalf("%d puts, %d deletes in %d batches; want %d each, in several batches", puts, dels, batches, n)
	}
}
