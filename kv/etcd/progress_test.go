package etcd_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv/etcd"
)

// TestProgressWithCallerMetadata: a caller's ctx carrying gRPC metadata
// (tracing, auth) must not divert the stream's progress requests to
// another watch stream: a quiet prefix on a busy store still gets its
// progress notices.
func TestProgressWithCallerMetadata(t *testing.T) {
	s := newStore(t, testenv.Etcd(t), etcd.Config{Root: "progressmd"})
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	busy, stopBusy := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-busy.Done():
				return
			case <-tick.C:
				_ = s.Put(busy, "busy/k", []byte("v"), nil)
			}
		}
	}()
	defer func() { stopBusy(); <-done }()

	mdCtx := metadata.AppendToOutgoingContext(ctx, "x-trace", "1")
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Events(mdCtx, "quiet", rev)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(3 * time.Second)
	for got := 0; got < 2; {
		select {
		case b := <-ch:
			if b.Err != nil || len(b.Events) != 0 {
				t.Fatalf("quiet prefix: got %+v, want progress only", b)
			}
			if b.Revision > rev {
				got++
			}
		case <-deadline:
			t.Fatal("no progress notices within 3s for a stream whose ctx carries metadata")
		}
	}
}
