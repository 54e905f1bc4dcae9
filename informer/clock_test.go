package informer_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/clock/clocktest"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
)

// timedFailing is failing that sends the time of each list attempt on at.
type timedFailing struct {
	failing
	at chan<- time.Time
}

func (f timedFailing) Snapshot(ctx context.Context, prefix string) (kv.Snapshot, error) {
	select {
	case f.at <- time.Now():
	case <-ctx.Done():
	}
	return f.failing.Snapshot(ctx, prefix)
}

// TestBackoffBetweenFailedLists: failed lists are retried after the
// configured backoff (with cenkalti's ±50% jitter), growing. It runs in a
// testing/synctest bubble, so each backoff is measured exactly, as the fake
// time between two list attempts.
func TestBackoffBetweenFailedLists(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newMemory(t)
		lists := make(chan time.Time, 16)
		inf, err := informer.New(timedFailing{failing{s, s}, lists}, informer.Config[int]{Decode: atoi,
			Backoff: informer.Backoff{Initial: time.Second, Max: 4 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		run(t, inf)
		attempts := func() string {
			// Expired at once: no fake time passes while asking.
			err := inf.WaitForCacheSync(ctxFor(t, 0))
			return err.Error()
		}
		last := <-lists
		var waits []time.Duration
		for i := range 6 {
			synctest.Wait() // the attempt has failed; the informer waits out its backoff
			if !strings.Contains(attempts(), "("+string(rune('1'+i))+" attempts)") {
				t.Fatalf("before retry %d: %s", i+1, attempts())
			}
			next := <-lists // fake time moves on to the retry
			waits = append(waits, next.Sub(last))
			last = next
			synctest.Wait()
			if !strings.Contains(attempts(), "("+string(rune('2'+i))+" attempts)") {
				t.Fatalf("retry %d did not run: %s", i+1, attempts())
			}
		}
		if w := waits[0]; w < 500*time.Millisecond || w > 1500*time.Millisecond {
			t.Errorf("first backoff %v, want 1s ± 50%%", w)
		}
		for _, w := range waits {
			if w > 6*time.Second {
				t.Errorf("backoff %v beyond Max 4s + 50%%", w)
			}
		}
		if waits[5] < 2*time.Second {
			t.Errorf("sixth backoff %v, want it grown toward Max 4s (waits %v)", waits[5], waits)
		}
	})
}

// TestConfigClockDrivesResync is the package's one test of the public
// Config.Clock option with a clocktest fake, kept for users whose informers
// talk to real servers, out of a testing/synctest bubble's reach: resyncs
// come every ResyncPeriod plus at most 10% jitter on the given clock, as
// OnUpdate(obj, obj), and never before. Every other test of fake time here
// runs in a bubble instead.
func TestConfigClockDrivesResync(t *testing.T) {
	s := newMemory(t)
	put(t, s, "r/a", "1")
	put(t, s, "r/b", "2")
	clock := clocktest.New(time.Unix(0, 0))
	inf, err := informer.New(s, informer.Config[int]{Prefix: "r", Decode: atoi, Clock: clock, ResyncPeriod: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var resyncs, others atomic.Int32
	reg, err := inf.AddEventHandler(informer.Handler[int]{
		OnUpdate: func(_ string, old, new int) {
			if old == new {
				resyncs.Add(1)
			} else {
				others.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, inf)
	<-reg.Synced()
	for round := 1; round <= 3; round++ {
		poll.Until(t, 5*time.Second, "no resync timer armed", func() bool { return clock.Armed() == 1 })
		due, _ := clock.NextDue()
		if d := due.Sub(clock.Now()); d < time.Minute || d > 66*time.Second {
			t.Fatalf("resync %d due in %v, want 1m to 1m6s", round, d)
		}
		if n := resyncs.Load(); n != int32(2*(round-1)) {
			t.Fatalf("%d resync calls before round %d, want %d", n, round, 2*(round-1))
		}
		clock.Set(due)
		poll.Until(t, 5*time.Second, "resync not delivered", func() bool { return resyncs.Load() == int32(2*round) })
	}
	if n := others.Load(); n != 0 {
		t.Errorf("%d real updates, want 0", n)
	}
}

// With OnResync set, resyncs go there and not to OnUpdate, which keeps
// the real updates.
func TestOnResyncTakesResyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newMemory(t)
		put(t, s, "r/a", "1")
		put(t, s, "r/b", "2")
		inf, err := informer.New(s, informer.Config[int]{Prefix: "r", Decode: atoi, ResyncPeriod: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var resyncs, updates atomic.Int32
		reg, err := inf.AddEventHandler(informer.Handler[int]{
			OnUpdate: func(string, int, int) { updates.Add(1) },
			OnResync: func(key string, obj int) {
				if (key == "r/a") != (obj == 1) {
					t.Errorf("OnResync(%s, %d): not the cached object", key, obj)
				}
				resyncs.Add(1)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		run(t, inf)
		<-reg.Synced()
		time.Sleep(70 * time.Second) // one resync, jitter included
		synctest.Wait()
		put(t, s, "r/a", "3")
		synctest.Wait()
		if r, u := resyncs.Load(), updates.Load(); r != 2 || u != 1 {
			t.Fatalf("OnResync called %d times, OnUpdate %d; want 2 and 1", r, u)
		}
	})
}
