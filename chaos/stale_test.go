//go:build chaos

package chaos

import (
	"context"
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

// Stale reads on a cluster: one writer increments a counter through every
// member while readers pinned to one member each read it, by default and
// with ReadOptions.Consistent. A read is stale when it returns less than a
// value whose Put had been acknowledged before the read was sent. First
// on a quiet cluster, then around a pause of the store's leader longer
// than its election timeout, with a reader pinned to that member.

const staleQuiet = 4 * time.Second

func TestStaleReads(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			forEachSeed(t, func(t *testing.T, seed uint64, rng *rand.Rand) {
				staleReadsRun(t, b, rng)
			})
		})
	}
}

// staleCount counts reads and stale answers of one read mode.
type staleCount struct{ reads, stale, late atomic.Int64 }

func staleReadsRun(t *testing.T, backend string, rng *rand.Rand) {
	tl := newTimeline(t)
	srv := startCluster(t, backend)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	key := fmt.Sprintf("chaos/stale/%08x", rng.Uint32())

	writer, err := srv.client.open(ctx, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = writer.Close() }()
	var acked atomic.Int64 // highest value whose Put was acknowledged
	// A failed Put may still be applied later, after Puts of higher values
	// (one sent to the paused member waits in its socket and is applied
	// when it wakes up): the key then really holds that older value, and a
	// read of it is not stale. Such values are remembered here.
	var unsure sync.Map // int64 -> struct{}
	if err := withTimeout(10*time.Second, func(ctx context.Context) error { return writer.Put(ctx, key, []byte("0"), nil) }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(1); ctx.Err() == nil; i++ {
			err := withTimeout(opTimeout, func(c context.Context) error { return writer.Put(c, key, []byte(strconv.FormatInt(i, 10)), nil) })
			if err == nil {
				acked.Store(i)
			} else {
				unsure.Store(i, struct{}{})
				pause(20 * time.Millisecond) // a failed Put may return at once
			}
		}
	})

	// phase runs readers pinned to members (by default and Consistent)
	// until stop, counting into def and cons.
	phase := func(pinned []int, stop <-chan struct{}, def, cons *staleCount) {
		var readers sync.WaitGroup
		for _, i := range pinned {
			cfg := clientConfig{Backend: backend, Endpoints: []string{srv.client.Endpoints[i]}}
			s, err := cfg.open(ctx, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			for _, mode := range []struct {
				c    *staleCount
				opts *kv.ReadOptions
			}{{def, nil}, {cons, &kv.ReadOptions{Consistent: true}}} {
				readers.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						floor := acked.Load()
						var p *kv.KVPair
						err := withTimeout(opTimeout, func(c context.Context) error {
							var err error
							p, err = s.Get(c, key, mode.opts)
							return err
						})
						if err != nil {
							pause(20 * time.Millisecond) // unreachable: try again
							continue
						}
						mode.c.reads.Add(1)
						v, _ := strconv.ParseInt(string(p.Value), 10, 64)
						if _, late := unsure.Load(v); late && v < floor {
							mode.c.late.Add(1)
							continue
						}
						if v < floor {
							mode.c.stale.Add(1)
							tl.say("       stale read from %s (consistent %v): %d, %d acknowledged before it was sent", srv.members[i].name, mode.opts != nil, v, floor)
						}
					}
				})
			}
			defer func() { _ = s.Close() }()
		}
		<-stop
		readers.Wait()
	}

	// Quiet: readers on every follower.
	leader := srv.storeLeader(t)
	var followers []int
	for i := range srv.members {
		if i != leader {
			followers = append(followers, i)
		}
	}
	stop := make(chan struct{})
	time.AfterFunc(staleQuiet, func() { close(stop) })
	qDef, qCons := &staleCount{}, &staleCount{}
	phase(followers, stop, qDef, qCons)

	// A pause of the store's leader past its election timeout, a reader
	// pinned to it; reads go on for 2 s after it wakes up.
	leader = srv.storeLeader(t)
	stop = make(chan struct{})
	pDef, pCons := &staleCount{}, &staleCount{}
	done := make(chan struct{})
	go func() { phase([]int{leader}, stop, pDef, pCons); close(done) }()
	// The pause must find both readers reading.
	for started := time.Now(); pDef.reads.Load() == 0 || pCons.reads.Load() == 0; {
		if time.Since(started) > 30*time.Second {
			t.Fatal("the readers pinned to the store leader read nothing in 30s")
		}
		pause(10 * time.Millisecond) // polling the counters
	}
	m := srv.members[leader]
	d := electionTTL + time.Duration(rng.IntN(1000))*time.Millisecond
	tl.say("FAULT  SIGSTOP %s store leader %s for %v", backend, m.name, d)
	if err := m.proc.Pause(); err != nil {
		t.Fatal(err)
	}
	pause(d)
	if err := m.proc.Resume(); err != nil {
		t.Fatal(err)
	}
	tl.say("       SIGCONT %s", m.name)
	pause(2 * time.Second)
	close(stop)
	<-done
	cancel()
	wg.Wait()

	t.Logf("%s: stale reads, quiet cluster, readers on followers: default %d of %d, Consistent %d of %d; "+
		"around a paused leader, reader on it: default %d of %d, Consistent %d of %d "+
		"(reads of a failed Put applied late, not stale: %d default, %d Consistent)",
		backend, qDef.stale.Load(), qDef.reads.Load(), qCons.stale.Load(), qCons.reads.Load(),
		pDef.stale.Load(), pDef.reads.Load(), pCons.stale.Load(), pCons.reads.Load(),
		qDef.late.Load()+pDef.late.Load(), qCons.late.Load()+pCons.late.Load())
	if qDef.reads.Load() < 50 || qCons.reads.Load() < 50 {
		t.Fatalf("only %d and %d reads on the quiet cluster: the readers barely ran", qDef.reads.Load(), qCons.reads.Load())
	}
	if n := qCons.stale.Load() + pCons.stale.Load(); n > 0 {
		t.Errorf("%s: %d Consistent reads were stale", backend, n)
	}
}
