package informer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
)

// TestCheckReportsStaleness: Check is nil only while the informer is synced
// and hears from the store within StaleAfter; silence makes it ErrStale, and
// the next word from the store makes it healthy again. It runs in a
// testing/synctest bubble: the silence is fake time, measured exactly.
func TestCheckReportsStaleness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// No progress notices: only the test's writes make the store speak.
		b := memory.NewBackend(memory.WithProgressInterval(time.Hour))
		t.Cleanup(b.Close)
		s := b.Client()
		t.Cleanup(func() { _ = s.Close() })
		inf, err := informer.New(s, informer.Config[int]{Prefix: "c", Decode: atoi, StaleAfter: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := inf.Check(); !errors.Is(err, informer.ErrNotSynced) || !strings.Contains(err.Error(), "not running") {
			t.Errorf("Check before Run = %v, want ErrNotSynced saying it is not running", err)
		}
		run(t, inf)
		if err := inf.WaitForCacheSync(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := inf.Check(); err != nil {
			t.Errorf("Check after sync = %v, want nil", err)
		}
		time.Sleep(11 * time.Second)
		err = inf.Check()
		if !errors.Is(err, informer.ErrStale) || !strings.Contains(err.Error(), "no word from the store for 11s") {
			t.Errorf("Check after 11s of silence = %v, want ErrStale saying for how long", err)
		}
		put(t, s, "c/a", "1")
		synctest.Wait() // the change has reached the informer
		if err := inf.Check(); err != nil {
			t.Errorf("Check after a change arrived = %v, want nil", err)
		}
	})
}

// TestCheckReportsStreamErrors: a broken stream makes Check fail at once,
// wrapping the stream's error, while the cache keeps serving.
func TestCheckReportsStreamErrors(t *testing.T) {
	s := newMemory(t)
	put(t, s, "c/a", "1")
	inf, err := informer.New(brokenStream{s, s}, informer.Config[int]{Prefix: "c", Decode: atoi,
		Backoff: informer.Backoff{Initial: time.Hour, Max: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, inf)
	if err := inf.WaitForCacheSync(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "Check did not report the broken stream", func() bool {
		return errors.Is(inf.Check(), informer.ErrStale)
	})
	if err := inf.Check(); !errors.Is(err, kv.ErrNotReachable) {
		t.Errorf("Check = %v, want it to wrap the stream's kv.ErrNotReachable", err)
	}
	if v, ok := inf.Get("c/a"); !ok || v != 1 {
		t.Errorf("Get(c/a) = %v, %v while stale, want the last known 1", v, ok)
	}
}

// brokenStream lists fine but its event stream fails at once.
type brokenStream struct {
	kv.Store
	kv.Streamer
}

func (brokenStream) Events(context.Context, string, uint64) (<-chan kv.EventBatch, error) {
	ch := make(chan kv.EventBatch, 1)
	ch <- kv.EventBatch{Err: fmt.Errorf("read tcp 10.0.0.1:2379: %w", kv.ErrNotReachable)}
	close(ch)
	return ch, nil
}
