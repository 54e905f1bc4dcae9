//go:build chaos

package chaos

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/regentkv/regent/internal/testenv"
)

var (
	seedFlag     = flag.Uint64("chaos.seed", 0, "seed of the scenarios (0: a new random one per run, printed)")
	seedsFlag    = flag.Int("chaos.seeds", 1, "how many seeds to run each scenario with, starting at -chaos.seed")
	backendsFlag = flag.String("chaos.backends", "etcd,zookeeper,consul", "backends to run the scenarios on")
)

func TestMain(m *testing.M) {
	testenv.RegisterChild("candidate", runCandidate)
	if code, ok := testenv.Child(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// forEachSeed runs scenario once per seed, as a subtest named after it,
// with an rng drawn from the seed: the fault schedule and the operation
// mix come from it, so a seed replays the same scenario (timing aside).
func forEachSeed(t *testing.T, scenario func(t *testing.T, seed uint64, rng *rand.Rand)) {
	t.Helper()
	first := *seedFlag
	if first == 0 {
		first = rand.Uint64N(1 << 32)
	}
	for i := range uint64(max(*seedsFlag, 1)) {
		seed := first + i
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("seed %d: replay with -chaos.seed=%d -run '%s'", seed, seed, t.Name())
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("FAILED with seed %d: replay with -chaos.seed=%d -run '%s'", seed, seed, t.Name())
				}
			})
			scenario(t, seed, rand.New(rand.NewPCG(splitmix64(seed), splitmix64(seed^0x9e3779b97f4a7c15))))
		})
	}
}

// splitmix64 scrambles a seed: PCG seeded with consecutive values gives
// nearly the same first draws (seeds 100 to 104 all drew the same first
// IntN(2)), so the seeds of one run would replay one scenario.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// wantBackend reports whether -chaos.backends names b.
func wantBackend(b string) bool {
	for _, n := range strings.Split(*backendsFlag, ",") {
		if strings.TrimSpace(n) == b {
			return true
		}
	}
	return false
}

// mono is CLOCK_MONOTONIC in nanoseconds: one clock for the test and every
// process it starts, unaffected by changes to the wall clock.
func mono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// timeline records what a scenario did, to be printed when it fails.
type timeline struct {
	mu    sync.Mutex
	start int64
	lines []string
}

func newTimeline(t *testing.T) *timeline {
	tl := &timeline{start: mono()}
	t.Cleanup(func() {
		if t.Failed() {
			tl.mu.Lock()
			defer tl.mu.Unlock()
			t.Logf("timeline:\n%s", strings.Join(tl.lines, "\n"))
		}
	})
	return tl
}

// at is a monotonic time as seconds into the scenario, for messages.
func (tl *timeline) at(ns int64) string {
	return fmt.Sprintf("%8.3fs", float64(ns-tl.start)/float64(time.Second))
}

func (tl *timeline) say(format string, args ...any) {
	now := mono()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.lines = append(tl.lines, tl.at(now)+"  "+fmt.Sprintf(format, args...))
}

// pause waits d, the gap a fault schedule puts between two steps: the
// scenario is about what happens meanwhile, so the wait is the point.
func pause(d time.Duration) { time.Sleep(d) }
