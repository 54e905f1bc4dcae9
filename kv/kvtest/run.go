package kvtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/regentkv/regent/kv"
)

// testCase is one named conformance case. Cases run concurrently unless
// serial is set: serial cases run first, one at a time, for checks that
// need a quiet backend (goroutine counts, compaction). A case with a
// timeout is one that waits for TTLs.
type testCase struct {
	name    string
	serial  bool
	timeout func(h Harness) time.Duration // nil: defaultTimeout
	run     func(e *env)
}

const defaultTimeout = 30 * time.Second

// Run runs the conformance suite against the backend h describes. Every
// case is a subtest named after what it pins, on its own key prefix
// "kvtest/<case>/<random>", with its own deadline. Cases that depend on an
// optional power (kv.Streamer) are added only when the stores from h.New
// have it; nothing is ever skipped.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Name == "" || h.New == nil || h.Kill == nil {
		t.Fatalf("kvtest: Harness needs Name, New and Kill (got Name=%q New set=%t Kill set=%t)", h.Name, h.New != nil, h.Kill != nil)
	}
	if h.MinTTL < 0 || h.TTLSlack < 0 {
		t.Fatalf("kvtest: %s: negative MinTTL %v or TTLSlack %v", h.Name, h.MinTTL, h.TTLSlack)
	}
	probe := h.New(t)
	_, streamer := probe.(kv.Streamer)
	_, inspector := probe.(kv.LockInspector)
	_, ttls := probe.(kv.TTLReporter)
	if err := probe.Close(); err != nil {
		t.Fatalf("kvtest: %s: Close of a fresh store: %v", h.Name, err)
	}
	if streamer && h.Compact == nil {
		t.Fatalf("kvtest: %s: stores implement kv.Streamer, so Harness.Compact is required", h.Name)
	}
	runID := fmt.Sprintf("%08x", rand.Uint32())
	run := func(c testCase) {
		t.Run(c.name, func(t *testing.T) {
			timeout := defaultTimeout
			if c.timeout != nil {
				timeout = c.timeout(h)
			}
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			t.Cleanup(cancel)
			c.run(&env{
				T:      t,
				h:      h,
				ctx:    ctx,
				prefix: path.Join("kvtest", c.name, runID+fmt.Sprintf("%04x", rand.Uint32()&0xffff)),
			})
		})
	}
	// Serial cases first, alone. Then the others concurrently, from
	// goroutines rather than with t.Parallel: -test.parallel defaults to
	// GOMAXPROCS, and cases that mostly wait for TTLs would queue behind
	// each other. Cases that wait for TTLs all start at once; the others
	// share a few slots so that timing checks are not starved.
	cases := allCases(h, streamer, inspector, ttls)
	for _, c := range cases {
		if c.serial {
			run(c)
		}
	}
	slots := make(chan struct{}, fastSlots)
	var wg sync.WaitGroup
	for _, c := range cases {
		if c.serial {
			continue
		}
		slow := c.timeout != nil
		wg.Go(func() {
			if !slow {
				slots <- struct{}{}
				defer func() { <-slots }()
			}
			run(c)
		})
	}
	wg.Wait()
}

// fastSlots is how many cases that do not wait for TTLs run at once.
const fastSlots = 4

func allCases(h Harness, streamer, inspector, ttls bool) []testCase {
	var cs []testCase
	for _, group := range [][]testCase{
		crudCases(), valueCases(), atomicCases(), treeCases(), keyCases(),
		ttlCases(), watchCases(), watchTreeCases(), lockCases(), closedCases(),
		contextCases(),
	} {
		cs = append(cs, group...)
	}
	if streamer {
		cs = append(cs, streamCases(h)...)
	}
	if inspector {
		cs = append(cs, lockHolderCases()...)
	}
	if ttls {
		cs = append(cs, ttlReporterCases()...)
	}
	return cs
}

// env is what a case works with: its prefix, its deadline, its backend.
type env struct {
	*testing.T
	h      Harness
	ctx    context.Context
	prefix string
}

// key returns the key of the case's prefix joined with parts.
func (e *env) key(parts ...string) string {
	return path.Join(append([]string{e.prefix}, parts...)...)
}

// store opens a client that is closed when the case ends.
func (e *env) store() kv.Store {
	e.Helper()
	s := e.h.New(e.T)
	if s == nil {
		e.Fatalf("%s: Harness.New returned nil", e.h.Name)
	}
	e.Cleanup(func() { _ = s.Close() })
	return s
}

// streamer opens a client and returns it as a kv.Streamer.
func (e *env) streamer() (kv.Store, kv.Streamer) {
	e.Helper()
	s := e.store()
	st, ok := s.(kv.Streamer)
	if !ok {
		e.Fatalf("%s: store %T does not implement kv.Streamer", e.h.Name, s)
	}
	return s, st
}

// ttl is the TTL the TTL, KeepAlive and lock cases use: max(MinTTL,
// MinKeepAliveTTL, 1s).
func ttlOf(h Harness) time.Duration { return max(h.MinTTL, h.MinKeepAliveTTL, time.Second) }

// minKeepAliveTTL is the smallest TTL of KeepAlive writes and locks.
func minKeepAliveTTL(h Harness) time.Duration { return max(h.MinTTL, h.MinKeepAliveTTL) }

func (e *env) ttl() time.Duration { return ttlOf(e.h) }

// overdue is how long after a write (or a client's death) a key with the
// case TTL may still exist: TTL + TTLSlack + a margin for slow CI.
func overdueOf(h Harness) time.Duration { return ttlOf(h) + h.TTLSlack + 2*time.Second }

func (e *env) overdue() time.Duration { return overdueOf(e.h) }

// ttlTimeout is the deadline of a case that waits for expiries: room for
// `ttls` TTLs plus two overdue windows.
func ttlTimeout(ttls int) func(Harness) time.Duration {
	return func(h Harness) time.Duration {
		return time.Duration(ttls)*ttlOf(h) + 2*overdueOf(h) + 20*time.Second
	}
}
