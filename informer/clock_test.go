package informer_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regentkv/regent/clock/clocktest"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/poll"
)

// TestBackoffFollowsTheClock: failed lists are retried after the configured
// backoff (with cenkalti's ±50% jitter), growing, on the Config's Clock.
func TestBackoffFollowsTheClock(t *testing.T) {
	s := newMemory(t)
	clock := clocktest.New(time.Unix(0, 0))
	inf, err := informer.New(failing{s, s}, informer.Config[int]{Decode: atoi, Clock: clock,
		Backoff: informer.Backoff{Initial: time.Second, Max: 4 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, inf)
	attempts := func() string {
		err := inf.WaitForCacheSync(ctxFor(t, time.Millisecond))
		return err.Error()
	}
	var waits []time.Duration
	for i := range 6 {
		poll.Until(t, 5*time.Second, "no retry timer armed", func() bool { return clock.Armed() == 1 })
		due, _ := clock.NextDue()
		d := due.Sub(clock.Now())
		waits = append(waits, d)
		if !strings.Contains(attempts(), "("+string(rune('1'+i))+" attempts)") {
			t.Fatalf("before retry %d: %s", i+1, attempts())
		}
		clock.Step(d)
		poll.Until(t, 5*time.Second, "retry did not run", func() bool {
			return strings.Contains(attempts(), "("+string(rune('2'+i))+" attempts)")
		})
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
}

// TestResyncFollowsTheClock: resyncs come every ResyncPeriod plus at most
// 10% jitter, as OnUpdate(obj, obj), and never before.
func TestResyncFollowsTheClock(t *testing.T) {
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
