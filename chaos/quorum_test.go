//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
)

// A quorum loss: two members of a 3-member cluster killed. Every call of a
// client given all members must return a typed error (or, for a read the
// backend serves without a quorum, an answer) by the caller's deadline;
// once the members are back everything works again, locks included.

// quorumCallTimeout is the caller's deadline of each call during the loss;
// quorumSlack is how late after it a call may return.
const (
	quorumCallTimeout = 2 * time.Second
	quorumSlack       = 500 * time.Millisecond
)

func TestQuorumLoss(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			forEachSeed(t, func(t *testing.T, seed uint64, rng *rand.Rand) {
				quorumLossRun(t, b, rng)
			})
		})
	}
}

func quorumLossRun(t *testing.T, backend string, rng *rand.Rand) {
	tl := newTimeline(t)
	srv := startCluster(t, backend)
	ctx := context.Background()
	s, err := srv.client.open(ctx, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	key := fmt.Sprintf("chaos/quorum/%08x", rng.Uint32())
	lockKey := key + "-lock"
	if err := withTimeout(quorumCallTimeout*5, func(ctx context.Context) error { return s.Put(ctx, key, []byte("v0"), nil) }); err != nil {
		t.Fatalf("Put before the loss: %v", err)
	}

	// Kill two members, the store's leader among them half the time.
	leader := srv.storeLeader(t)
	keep := rng.IntN(len(srv.members))
	if rng.IntN(2) == 0 {
		keep = (leader + 1 + rng.IntN(2)) % len(srv.members)
	}
	for i, m := range srv.members {
		if i != keep {
			tl.say("FAULT  kill %s member %s (pid %d)", backend, m.name, m.proc.PID())
			m.proc.Kill()
		}
	}
	calls := []struct {
		name      string
		readAllow func() bool // the backend may answer it from the member left
		call      func(ctx context.Context) error
	}{
		{"Get", always, func(ctx context.Context) error { return lastValue(s.Get(ctx, key, nil)) }},
		{"Get consistent", never, func(ctx context.Context) error {
			return lastValue(s.Get(ctx, key, &kv.ReadOptions{Consistent: true}))
		}},
		{"List", always, func(ctx context.Context) error { _, err := s.List(ctx, key, nil); return err }},
		{"Put", never, func(ctx context.Context) error { return s.Put(ctx, key, []byte("v1"), nil) }},
		{"AtomicPut", never, func(ctx context.Context) error {
			_, _, err := s.AtomicPut(ctx, key+"-new", []byte("x"), nil, nil)
			return err
		}},
		{"Delete", never, func(ctx context.Context) error { return s.Delete(ctx, key+"-other") }},
		{"Lock", never, func(ctx context.Context) error {
			l, err := s.NewLock(ctx, lockKey, &kv.LockOptions{TTL: electionTTL})
			if err != nil {
				return err
			}
			_, err = l.Lock(ctx)
			return err
		}},
	}
	var worst time.Duration
	for round := range 2 {
		for _, c := range calls {
			start := time.Now()
			err := withTimeout(quorumCallTimeout, c.call)
			took := time.Since(start)
			worst = max(worst, took)
			tl.say("       round %d %s: %v after %v", round, c.name, err, took.Round(time.Millisecond))
			switch {
			case took > quorumCallTimeout+quorumSlack:
				t.Errorf("%s without a quorum returned after %v, deadline %v", c.name, took, quorumCallTimeout)
			case err == nil && !c.readAllow():
				t.Errorf("%s succeeded without a quorum", c.name)
			case err != nil && !errors.Is(err, kv.ErrNotReachable) && !errors.Is(err, context.DeadlineExceeded):
				t.Errorf("%s without a quorum: %v, want ErrNotReachable (or ErrOutcomeUnknown) or the deadline", c.name, err)
			}
		}
	}

	// Bring them back; everything must work again.
	back := time.Now()
	var restarts sync.WaitGroup
	restartErrs := make(chan error, len(srv.members))
	for i, m := range srv.members {
		if i == keep {
			continue
		}
		restarts.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			if err := m.restart(rctx); err != nil {
				restartErrs <- fmt.Errorf("restart %s: %w", m.name, err)
			}
		})
	}
	var recovered time.Duration
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := withTimeout(quorumCallTimeout, func(ctx context.Context) error { return s.Put(ctx, key, []byte("v2"), nil) })
		if err == nil {
			recovered = time.Since(back)
			break
		}
		if time.Now().After(deadline) {
			restarts.Wait()
			t.Fatalf("no Put within 60s of the restarts: %v", err)
		}
		pause(20 * time.Millisecond) // a failed Put may return at once
	}
	restarts.Wait() // both members serve again
	close(restartErrs)
	for err := range restartErrs {
		t.Fatal(err)
	}
	err = withTimeout(30*time.Second, func(ctx context.Context) error {
		p, err := s.Get(ctx, key, &kv.ReadOptions{Consistent: true})
		if err == nil && string(p.Value) != "v2" {
			err = fmt.Errorf("read %q, want v2", p.Value)
		}
		return err
	})
	if err != nil {
		t.Fatalf("Get after recovery: %v", err)
	}
	// The lock, which nobody could take during the loss, can be taken.
	lockTook := time.Now()
	err = withTimeout(30*time.Second, func(ctx context.Context) error {
		l, err := s.NewLock(ctx, lockKey, &kv.LockOptions{TTL: electionTTL})
		if err != nil {
			return err
		}
		if _, err := l.Lock(ctx); err != nil {
			return err
		}
		return l.Unlock(ctx)
	})
	if err != nil {
		t.Fatalf("Lock after recovery: %v", err)
	}
	t.Logf("%s: quorum loss: slowest call returned after %v (deadline %v); writes back %v after the restarts began; lock taken %v later",
		backend, worst.Round(time.Millisecond), quorumCallTimeout, recovered.Round(time.Millisecond), time.Since(lockTook).Round(time.Millisecond))
}

func always() bool { return true }
func never() bool  { return false }

// lastValue is the error of a read during the quorum loss: a read that
// answers must answer v0, the last acknowledged write, or v1, the Put of
// the loss whose outcome may be unknown.
func lastValue(p *kv.KVPair, err error) error {
	if err == nil && string(p.Value) != "v0" && string(p.Value) != "v1" {
		return fmt.Errorf("%w: read %q during the quorum loss, want v0 or v1", errStaleRead, p.Value)
	}
	return err
}

var errStaleRead = errors.New("stale read")

func withTimeout(d time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return f(ctx)
}
