//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
)

// Client failover: a client given every member of a 3-member cluster runs
// Puts and Gets, follows a key with Watch and holds a lock, while the
// member it talks to is killed (SIGKILL) and stays down. Checks:
//   - its calls resume: some call succeeds within failoverResume of the
//     kill, and every call returns by its deadline (measured: the longest
//     time without a successful call around the kill);
//   - the Watch is not ended by the loss, never goes back to an older
//     value and delivers the final value another client writes after the
//     kill; on etcd, which keeps history, it skips none (elsewhere changes
//     may coalesce, counted);
//   - the lock is either kept (still held, and refused to another client)
//     or its loss is signalled on the lost channel, and then the same
//     Locker takes it again.
//
// "The member it talks to": the ZooKeeper session's server
// (Store.ConnectedServer); Consul's client sticks to the first address
// that answers, so it is the first of its list; etcd's client spreads
// calls over every endpoint, so its first one stands for "a member it
// talks to" (its watch and lease streams may be on it or not).

// failoverResume bounds how long after the kill a call must succeed
// again: an election (etcd, Consul: up to ~2 election timeouts), a
// ZooKeeper reconnect, plus one call timeout.
const failoverResume = 10 * time.Second

func TestClientFailover(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			forEachSeed(t, func(t *testing.T, seed uint64, rng *rand.Rand) {
				clientFailoverRun(t, b, rng)
			})
		})
	}
}

// connectedServer is implemented by stores that can say which member they
// talk to (kv/zookeeper).
type connectedServer interface{ ConnectedServer() string }

func clientFailoverRun(t *testing.T, backend string, rng *rand.Rand) {
	tl := newTimeline(t)
	srv := startCluster(t, backend)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := fmt.Sprintf("chaos/failover/%08x", rng.Uint32())
	leader := srv.storeLeader(t) // the cluster is up; half the time its leader dies
	victim := leader
	if rng.IntN(2) == 0 {
		victim = (leader + 1 + rng.IntN(2)) % len(srv.members)
	}
	c, err := srv.clientFor(victim).open(ctx, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if cs, ok := c.(connectedServer); ok {
		victim = -1
		for i, m := range srv.members {
			if m.name == cs.ConnectedServer() {
				victim = i
			}
		}
		if victim < 0 {
			t.Fatalf("the client talks to %q, not a member of %v", cs.ConnectedServer(), srv.client.Endpoints)
		}
	}
	other, err := srv.clientFor(victim+1).open(ctx, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close() }()

	// The lock, held by c.
	locker, err := c.NewLock(ctx, base+"/lock", &kv.LockOptions{TTL: electionTTL})
	if err != nil {
		t.Fatal(err)
	}
	var lost <-chan struct{}
	if err := withTimeout(10*time.Second, func(ctx context.Context) error { lost, err = locker.Lock(ctx); return err }); err != nil {
		t.Fatalf("Lock: %v", err)
	}

	// The Watch, on c, of a key other writes 1, 2, 3, ...
	watched := base + "/watched"
	if err := withTimeout(10*time.Second, func(ctx context.Context) error { return other.Put(ctx, watched, []byte("0"), nil) }); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	updates, err := c.Watch(wctx, watched, nil)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	var (
		wmu       sync.Mutex
		delivered []int64
		watchErr  error
		delivery  = make(chan struct{}, 1) // a value was delivered since the last look
	)
	var watching sync.WaitGroup
	watching.Go(func() {
		for u := range updates {
			wmu.Lock()
			switch {
			case u.Err != nil:
				watchErr = u.Err
			case u.Pair == nil:
				watchErr = errors.New("the watched key was reported deleted; nobody deleted it")
			default:
				v, _ := strconv.ParseInt(string(u.Pair.Value), 10, 64)
				delivered = append(delivered, v)
				select {
				case delivery <- struct{}{}:
				default:
				}
			}
			wmu.Unlock()
		}
	})
	var acked atomic.Int64 // highest value of watched whose Put other saw acknowledged
	var ackedMu sync.Mutex
	ackedSet := map[int64]bool{} // every acknowledged value: only those count as skipped
	unsure := map[int64]bool{}   // values whose Put failed: they may land late
	var writing sync.WaitGroup
	stopWriting := make(chan struct{})
	writing.Go(func() {
		for i := int64(1); ; i++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			err := withTimeout(opTimeout, func(ctx context.Context) error { return other.Put(ctx, watched, []byte(strconv.FormatInt(i, 10)), nil) })
			if err != nil {
				// Not acknowledged: write the next value, never this one
				// again (the Watch must see values only go up). A failed
				// Put may still land later, after higher values: the
				// Watch may then show it, and that is no going back.
				ackedMu.Lock()
				unsure[i] = true
				ackedMu.Unlock()
				pause(20 * time.Millisecond) // a failed Put may return at once
				continue
			}
			acked.Store(i)
			ackedMu.Lock()
			ackedSet[i] = true
			ackedMu.Unlock()
			pause(10 * time.Millisecond) // a steady trickle, not a flood
		}
	})

	// c's own Puts and Gets, each with a deadline; every success is timed.
	var (
		omu       sync.Mutex
		successes []time.Time
		calls     int
		late      []string
	)
	stopOps := make(chan struct{})
	var ops sync.WaitGroup
	opKey := base + "/ops"
	ops.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopOps:
				return
			default:
			}
			start := time.Now()
			err := withTimeout(opTimeout, func(ctx context.Context) error {
				if i%2 == 0 {
					return c.Put(ctx, opKey, []byte(strconv.Itoa(i)), nil)
				}
				_, err := c.Get(ctx, opKey, nil)
				if errors.Is(err, kv.ErrKeyNotFound) {
					err = nil
				}
				return err
			})
			took := time.Since(start)
			omu.Lock()
			calls++
			if took > opTimeout+quorumSlack {
				late = append(late, fmt.Sprintf("call %d took %v: %v", i, took, err))
			}
			if err == nil {
				successes = append(successes, time.Now())
			}
			omu.Unlock()
			if err != nil {
				pause(20 * time.Millisecond) // a failed call may return at once
			}
		}
	})

	// Let everything run, then kill the member c talks to.
	pause(time.Second + time.Duration(rng.IntN(1000))*time.Millisecond)
	m := srv.members[victim]
	role := "a follower"
	if victim == srv.storeLeader(t) {
		role = "the store leader"
	}
	tl.say("FAULT  kill %s member %s (pid %d), the one the client talks to; it stays down", backend, m.name, m.proc.PID())
	m.proc.Kill()
	killed := time.Now()

	// The lock: kept, or lost (signalled) and taken again.
	var lockOutcome string
	select {
	case <-lost:
		lostAfter := time.Since(killed)
		tl.say("       lock loss signalled %v after the kill", lostAfter.Round(time.Millisecond))
		var err error
		var lost2 <-chan struct{}
		retake := time.Now()
		err = withTimeout(3*failoverResume, func(ctx context.Context) error { lost2, err = locker.Lock(ctx); return err })
		if err != nil {
			t.Fatalf("the lock was lost with the member; Lock again by the same Locker: %v", err)
		}
		lost = lost2
		lockOutcome = fmt.Sprintf("lost after %v, taken again %v later", lostAfter.Round(time.Millisecond), time.Since(retake).Round(time.Millisecond))
	case <-time.After(electionTTL + failoverResume):
		lockOutcome = "kept"
	}
	tl.say("       lock %s", lockOutcome)

	// Ops and the watch run on for a while with the member down.
	pause(3 * time.Second)
	close(stopOps)
	ops.Wait()
	close(stopWriting)
	writing.Wait()

	// The final value, written after the kill, must reach the Watch.
	final := acked.Load() + 1
	if err := withTimeout(failoverResume, func(ctx context.Context) error {
		return other.Put(ctx, watched, []byte(strconv.FormatInt(final, 10)), nil)
	}); err != nil {
		t.Fatalf("final Put by the other client: %v", err)
	}
	finalSent := time.Now()
	deadline := time.NewTimer(failoverResume)
	defer deadline.Stop()
	for {
		wmu.Lock()
		got := len(delivered) > 0 && delivered[len(delivered)-1] == final
		wmu.Unlock()
		if got {
			break
		}
		select {
		case <-delivery: // look again
		case <-deadline.C:
			wmu.Lock()
			n, werr := len(delivered), watchErr
			wmu.Unlock()
			t.Fatalf("the Watch did not deliver the final value %d within %v (%d updates delivered, terminal error %v)", final, failoverResume, n, werr)
		}
	}
	finalLatency := time.Since(finalSent)
	wcancel()
	watching.Wait()

	// Checks.
	if watchErr != nil {
		t.Errorf("the Watch ended with %v after the member loss", watchErr)
	}
	skipped := 0
	var top int64 // highest value delivered so far
	if len(delivered) > 0 {
		top = delivered[0]
	}
	for i := 1; i < len(delivered); i++ {
		from := top // gaps count from the highest value seen, not from a late one
		top = max(top, delivered[i])
		switch d := delivered[i] - delivered[i-1]; {
		case d <= 0 && (unsure[delivered[i]] || unsure[delivered[i-1]]):
			// A failed Put that landed late, or the value after it.
		case d <= 0:
			t.Errorf("the Watch went from %d back to %d", delivered[i-1], delivered[i])
		case d > 1:
			// Values whose Put failed may never have been written.
			for v := from + 1; v < delivered[i]; v++ {
				if ackedSet[v] {
					skipped++
				}
			}
		}
	}
	if backend == "etcd" && skipped > 0 {
		t.Errorf("the Watch skipped %d acknowledged values; etcd keeps history, so none may be lost", skipped)
	}
	for _, l := range late {
		t.Errorf("a call returned past its deadline after the member loss: %s", l)
	}
	var resumed, longestGap time.Duration = -1, 0
	for i, s := range successes {
		if resumed < 0 && s.After(killed) {
			resumed = s.Sub(killed)
		}
		if i > 0 {
			longestGap = max(longestGap, s.Sub(successes[i-1]))
		}
	}
	if resumed < 0 || resumed > failoverResume {
		t.Errorf("no call succeeded within %v of the kill (first after it: %v)", failoverResume, resumed)
	}
	// The lock is ours now (kept, or taken again): another client may not
	// take it.
	select {
	case <-lost:
		t.Errorf("the lock was lost again after it had been kept or retaken")
	default:
	}
	ol, err := other.NewLock(ctx, base+"/lock", &kv.LockOptions{TTL: electionTTL})
	if err != nil {
		t.Fatal(err)
	}
	if err := withTimeout(failoverResume, func(ctx context.Context) error { _, err := ol.TryLock(ctx); return err }); !errors.Is(err, kv.ErrLockHeld) {
		t.Errorf("TryLock by another client while the lock is held: %v, want ErrLockHeld", err)
	}
	t.Logf("%s: client failover (%s, %s, killed): first call ok %v after the kill, longest time without a successful call %v (%d calls); watch: %d updates, %d acknowledged values coalesced, final value %v after its Put; lock %s",
		backend, m.name, role, resumed.Round(time.Millisecond), longestGap.Round(time.Millisecond), calls,
		len(delivered), skipped, finalLatency.Round(time.Millisecond), lockOutcome)
	tl.say("       done: first call ok %v after the kill, longest gap %v", resumed.Round(time.Millisecond), longestGap.Round(time.Millisecond))
}
