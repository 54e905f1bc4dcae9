package driver

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/kv"
)

func TestSendLastGivesUpAfterCloseGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan int) // nobody reads
		start := time.Now()
		SendLast(t.Context(), ch, 1)
		if d := time.Since(start); d != CloseGrace {
			t.Errorf("SendLast to a reader that never reads returned after %v; want CloseGrace (%v)", d, CloseGrace)
		}
	})
}

func TestSendLastDeliversToAReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan int)
		go SendLast(t.Context(), ch, 7)
		time.Sleep(CloseGrace / 2) // fake time: the reader comes back late, within the grace
		if v := <-ch; v != 7 {
			t.Errorf("got %d, want 7", v)
		}
	})
}

func TestSendStopsWithCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Send(ctx, make(chan int), 1) {
		t.Error("Send to nobody with an ended ctx reported delivery")
	}
	ch := make(chan int, 1)
	if !Send(context.Background(), ch, 1) || <-ch != 1 {
		t.Error("Send to a buffered channel did not deliver")
	}
}

func TestSamePairs(t *testing.T) {
	p := func(k string, i uint64) *kv.KVPair { return &kv.KVPair{Key: k, LastIndex: i, Value: []byte(k)} }
	for _, tc := range []struct {
		a, b []*kv.KVPair
		same bool
	}{
		{nil, nil, true},
		{nil, []*kv.KVPair{}, true},
		{[]*kv.KVPair{p("a", 1)}, []*kv.KVPair{p("a", 1)}, true},
		{[]*kv.KVPair{p("a", 1)}, []*kv.KVPair{p("a", 2)}, false},
		{[]*kv.KVPair{p("a", 1)}, []*kv.KVPair{p("b", 1)}, false},
		{[]*kv.KVPair{p("a", 1), p("b", 1)}, []*kv.KVPair{p("b", 1), p("a", 1)}, false},
		{[]*kv.KVPair{p("a", 1)}, nil, false},
	} {
		if got := SamePairs(tc.a, tc.b); got != tc.same {
			t.Errorf("SamePairs(%v, %v) = %v; want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

func TestGroupStopsStartingAndWaits(t *testing.T) {
	var g Group
	release := make(chan struct{})
	done := make(chan struct{})
	if !g.Go(func() { <-release; close(done) }) {
		t.Fatal("Go before Stop started nothing")
	}
	g.Stop()
	if g.Go(func() { t.Error("a goroutine started after Stop") }) {
		t.Error("Go after Stop reported a start")
	}
	close(release)
	g.Wait()
	select {
	case <-done:
	default:
		t.Error("Wait returned before the goroutine ended")
	}
}

func TestUsableChecksCtxBeforeTheStore(t *testing.T) {
	closed := errors.New("closed")
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		ctx    context.Context
		closed error
		want   error
	}{
		{context.Background(), nil, nil},
		{context.Background(), closed, closed},
		{ended, nil, context.Canceled},
		{ended, closed, context.Canceled},
	} {
		if got := Usable(tc.ctx, tc.closed); !errors.Is(got, tc.want) || (tc.want == nil) != (got == nil) {
			t.Errorf("Usable(ctx err %v, closed %v) = %v; want %v", tc.ctx.Err(), tc.closed, got, tc.want)
		}
	}
}
