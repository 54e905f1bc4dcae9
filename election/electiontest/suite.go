package electiontest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvtest"
)

// Harness reaches one backend. Every field is required.
type Harness struct {
	kvtest.Harness
	// TTL is the election TTL to test with: at least MinTTL, short enough
	// for a failover test (a few seconds).
	TTL time.Duration
	// Cut makes the server unreachable for s from now on, without closing
	// s (stop the server, or drop s's connection and refuse reconnects). The
	// suite calls it at most once per test and never uses the backend after
	// that in the same test; the harness restores it in t.Cleanup.
	Cut func(t testing.TB, s kv.Store)
}

// Run runs the suite, each case as a subtest on h.
func Run(t *testing.T, h Harness) {
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) { c.Run(t, h) })
	}
}

// Case is one test of the suite.
type Case struct {
	Name string
	// Run runs the case on h.
	Run func(t *testing.T, h Harness)
}

// Cases returns the suite's cases, for a runner that wraps each one:
// in a testing/synctest bubble, say, with a backend made inside it (a
// bubble cannot hold subtests, so Run cannot be called in one).
func Cases() []Case {
	check := func(fn func(*testing.T, Harness)) func(*testing.T, Harness) {
		return func(t *testing.T, h Harness) {
			if h.New == nil || h.Kill == nil || h.Cut == nil || h.TTL <= 0 {
				t.Fatalf("electiontest: Harness %q needs New, Kill, Cut and a positive TTL", h.Name)
			}
			fn(t, h)
		}
	}
	return []Case{
		{"OneLeaderAmongCandidates", check(testOneLeader)},
		{"HandoverOnCancel", check(testHandoverOnCancel)},
		{"FailoverWhenLeaderDies", check(testFailover)},
		{"ObserveReportsNoLeader", check(testObserve)},
		{"FencedWritesAfterTermEnds", check(testFencing)},
		{"HealthCheckCatchesStuckLeader", check(testHealth)},
		{"StepsDownWhenCutOff", check(testStepDown)},
	}
}

var seq atomic.Int64

func electionKey(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("electiontest/%s/%d-%d", name, time.Now().UnixNano(), seq.Add(1))
}

// candidate is one process in an election.
type candidate struct {
	id      string
	store   kv.Store
	elector *election.Elector
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run returned
	runErr  error         // what Run returned, once done is closed
}

type start struct {
	c    *candidate
	term *election.Term
	at   time.Time // when OnStartedLeading was called
}

type world struct {
	t          *testing.T
	h          Harness
	key        string
	starts     chan start   // every term started, in order
	concurrent atomic.Int32 // leaders whose callback is running
	maxSeen    atomic.Int32
}

func newWorld(t *testing.T, h Harness) *world {
	return &world{t: t, h: h, key: electionKey(t), starts: make(chan start, 64)}
}

func (w *world) store() kv.Store {
	s := w.h.New(w.t)
	w.t.Cleanup(func() { _ = s.Close() })
	return s
}

// start runs a candidate whose leader callback holds until its ctx ends
// (or, with stuck, ignores its ctx until release closes).
func (w *world) start(id string, s kv.Store, cfg election.Config, stuck <-chan struct{}) *candidate {
	w.t.Helper()
	c := &candidate{id: id, store: s, done: make(chan struct{})}
	cfg.Key, cfg.Identity = w.key, id
	if cfg.TTL == 0 {
		cfg.TTL = w.h.TTL
	}
	cfg.Callbacks.OnStartedLeading = func(ctx context.Context) {
		n := w.concurrent.Add(1)
		for {
			m := w.maxSeen.Load()
			if n <= m || w.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		term, ok := election.TermFrom(ctx)
		if !ok {
			w.t.Errorf("%s: leader ctx carries no Term", id)
		}
		w.starts <- start{c, term, time.Now()}
		if stuck != nil {
			<-stuck
		} else {
			<-ctx.Done()
		}
		w.concurrent.Add(-1)
	}
	e, err := election.New(context.Background(), s, cfg)
	if err != nil {
		w.t.Fatalf("%s: election.New: %v", id, err)
	}
	c.elector = e
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		c.runErr = e.Run(ctx)
	}()
	w.t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			w.t.Errorf("%s: Run did not return 30s after its ctx was cancelled", id)
		}
	})
	return c
}

// nextLeader waits until one of cs starts a term and returns it. Terms
// started by other candidates are a failure: only cs may lead.
func (w *world) nextLeader(timeout time.Duration, cs ...*candidate) (*candidate, *election.Term) {
	w.t.Helper()
	st := w.nextStart(timeout, cs...)
	return st.c, st.term
}

func (w *world) nextStart(timeout time.Duration, cs ...*candidate) start {
	w.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case st := <-w.starts:
		for _, c := range cs {
			if c == st.c {
				return st
			}
		}
		w.t.Fatalf("%s started leading; want one of the candidates waited for", st.c.id)
	case <-deadline.C:
		w.t.Fatalf("no candidate started leading within %v", timeout)
	}
	return start{}
}

func testOneLeader(t *testing.T, h Harness) {
	w := newWorld(t, h)
	var cs []*candidate
	for i := range 3 {
		cs = append(cs, w.start(fmt.Sprintf("c%d", i), w.store(), election.Config{}, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lastToken uint64
	seen := map[string]bool{}
	for round := range 4 {
		leader, term := w.nextLeader(20*time.Second, cs...)
		if term.Token <= lastToken {
			t.Errorf("round %d: token %d does not increase on %d", round, term.Token, lastToken)
		}
		lastToken = term.Token
		seen[leader.id] = true
		got, err := leader.elector.Leader(ctx)
		if err != nil || got.Identity != leader.id || got.Token != term.Token {
			t.Errorf("round %d: Leader() = %+v, %v; want %s with token %d", round, got, err, leader.id, term.Token)
		}
		for _, c := range cs {
			if c != leader && c.elector.IsLeader() {
				t.Errorf("round %d: %s and %s both report IsLeader", round, c.id, leader.id)
			}
		}
		if err := leader.elector.Resign(ctx); err != nil {
			t.Fatalf("round %d: Resign: %v", round, err)
		}
		// It may lead again (it campaigns again), but not in the same term.
		if cur := leader.elector.Term(); cur != nil && cur.Token == term.Token {
			t.Errorf("round %d: %s still in term %d after Resign returned", round, leader.id, term.Token)
		}
	}
	if m := w.maxSeen.Load(); m != 1 {
		t.Errorf("at most %d leader callbacks ran at once; want exactly 1", m)
	}
	if len(seen) < 2 {
		t.Errorf("leadership never moved: leaders %v", seen)
	}
}

func testHandoverOnCancel(t *testing.T, h Harness) {
	w := newWorld(t, h)
	a := w.start("a", w.store(), election.Config{}, nil)
	if c, _ := w.nextLeader(20*time.Second, a); c != a {
		t.Fatal("a did not lead")
	}
	b := w.start("b", w.store(), election.Config{}, nil)
	// Let b see a as leader first, so that b is campaigning (usually
	// waiting on the lock) when a releases. a's record is written as its
	// term begins, beside OnStartedLeading: b may first see no leader.
	obs, err := b.elector.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(h.TTL)
	for seen := ""; seen != "a"; {
		select {
		case l := <-obs:
			if l.Identity != "" && l.Identity != "a" {
				t.Fatalf("b observes leader %q, want a", l.Identity)
			}
			seen = l.Identity
		case <-deadline:
			t.Fatalf("b did not observe a's leader record within %v of a's start", h.TTL)
		}
	}
	released := time.Now()
	a.cancel()
	<-a.done
	if a.runErr != nil {
		t.Fatalf("a.Run returned %v, want nil after cancel", a.runErr)
	}
	if c, _ := w.nextLeader(h.TTL, b); c != b {
		t.Fatal("b did not lead")
	}
	// Release is explicit: b must not have waited for a's TTL to run out.
	if took := time.Since(released); took >= h.TTL {
		t.Errorf("handover took %v, not less than the TTL %v: the lock was not released", took, h.TTL)
	}
}

func testFailover(t *testing.T, h Harness) {
	w := newWorld(t, h)
	sa := w.store()
	a := w.start("a", sa, election.Config{}, nil)
	if c, _ := w.nextLeader(20*time.Second, a); c != a {
		t.Fatal("a did not lead")
	}
	b := w.start("b", w.store(), election.Config{}, nil)
	died := time.Now()
	h.Kill(t, sa)
	limit := h.TTL + h.TTLSlack + 5*time.Second
	if c, _ := w.nextLeader(limit, b); c != b {
		t.Fatal("b did not lead")
	}
	t.Logf("failover after kill took %v (TTL %v)", time.Since(died).Round(time.Millisecond), h.TTL)
}

func testObserve(t *testing.T, h Harness) {
	w := newWorld(t, h)
	s := w.store()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	obs, err := election.Observe(ctx, s, w.key)
	if err != nil {
		t.Fatal(err)
	}
	next := func(want string) election.Leader {
		t.Helper()
		select {
		case l, ok := <-obs:
			if !ok {
				t.Fatalf("Observe closed, want leader %q", want)
			}
			if l.Err != nil || l.Identity != want {
				t.Fatalf("Observe: leader %q (err %v), want %q", l.Identity, l.Err, want)
			}
			return l.Leader
		case <-time.After(20 * time.Second):
			t.Fatalf("Observe: nothing within 20s, want leader %q", want)
		}
		return election.Leader{}
	}
	next("")
	if _, err := election.LeaderOf(ctx, s, w.key); !errors.Is(err, election.ErrNoLeader) {
		t.Errorf("LeaderOf with no leader: %v, want ErrNoLeader", err)
	}
	a := w.start("a", w.store(), election.Config{}, nil)
	l := next("a")
	if l.Token == 0 || l.Since.IsZero() {
		t.Errorf("leader record %+v lacks token or start time", l)
	}
	a.cancel()
	<-a.done
	next("")
	cancel()
	for o := range obs { // drains until Observe closes the channel on ctx end
		if o.Err != nil {
			t.Errorf("Observe ended by its ctx sent %v; want no error", o.Err)
		}
	}

	// A store closed under Observe: the last value says so.
	s2 := w.store()
	obs2, err := election.Observe(t.Context(), s2, w.key)
	if err != nil {
		t.Fatal(err)
	}
	if o := <-obs2; o.Err != nil || o.Identity != "" {
		t.Fatalf("Observe: %+v; want no leader", o)
	}
	_ = s2.Close()
	var last election.Observation
	for o := range obs2 {
		last = o
	}
	if !errors.Is(last.Err, kv.ErrClosed) {
		t.Errorf("Observe's last value after the store closed: %+v; want an Err matching kv.ErrClosed", last)
	}
}

func testFencing(t *testing.T, h Harness) {
	w := newWorld(t, h)
	a := w.start("a", w.store(), election.Config{}, nil)
	b := w.start("b", w.store(), election.Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, t1 := w.nextLeader(20*time.Second, a, b)
	data := w.key + "/data"
	if err := t1.GuardedPut(ctx, data, []byte("t1"), nil); err != nil {
		t.Fatalf("GuardedPut in the current term: %v", err)
	}
	if err := first.elector.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	_, t2 := w.nextLeader(20*time.Second, a, b)
	if t2.Token <= t1.Token {
		t.Errorf("token %d of the next term does not exceed %d", t2.Token, t1.Token)
	}
	err := t1.GuardedPut(ctx, data, []byte("stale"), nil)
	if !errors.Is(err, kv.ErrLockLost) && !errors.Is(err, kv.ErrNotLocked) {
		t.Errorf("GuardedPut from an ended term: %v, want ErrLockLost or ErrNotLocked", err)
	}
	if err := t1.GuardedDelete(ctx, data); !errors.Is(err, kv.ErrLockLost) && !errors.Is(err, kv.ErrNotLocked) {
		t.Errorf("GuardedDelete from an ended term: %v, want ErrLockLost or ErrNotLocked", err)
	}
	if err := t2.GuardedPut(ctx, data, []byte("t2"), nil); err != nil {
		t.Fatalf("GuardedPut in the new term: %v", err)
	}
	p, err := a.store.Get(ctx, data, nil)
	if err != nil || string(p.Value) != "t2" {
		t.Errorf("data = %v, %v; want t2 (the stale writes must not land)", p, err)
	}
}

func testHealth(t *testing.T, h Harness) {
	w := newWorld(t, h)
	release := make(chan struct{})
	var once sync.Once
	unstick := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unstick)
	a := w.start("a", w.store(), election.Config{HealthTimeout: 300 * time.Millisecond}, release)
	w.nextLeader(20*time.Second, a)
	if err := a.elector.Check(); err != nil {
		t.Fatalf("Check while leading normally: %v", err)
	}
	go func() { _ = a.elector.Resign(context.Background()) }()
	poll.Until(t, 10*time.Second, "Check to report the stuck leader", func() bool { return a.elector.Check() != nil })
	unstick()
	poll.Until(t, 10*time.Second, "Check to recover once the callback returned", func() bool { return a.elector.Check() == nil })
}

func testStepDown(t *testing.T, h Harness) {
	w := newWorld(t, h)
	s := w.store()
	stopped := make(chan time.Time, 1)
	cfg := election.Config{Callbacks: election.Callbacks{OnStoppedLeading: func() {
		select {
		case stopped <- time.Now():
		default:
		}
	}}}
	a := w.start("a", s, cfg, nil)
	w.nextLeader(20*time.Second, a)
	b := w.start("b", w.store(), election.Config{}, nil)
	cut := time.Now()
	h.Cut(t, s)
	var stoppedAt time.Time
	select {
	case stoppedAt = <-stopped:
		if took := stoppedAt.Sub(cut); took >= h.TTL {
			t.Errorf("leader stepped down %v after losing its server, not before its TTL %v", took, h.TTL)
		} else {
			t.Logf("stepped down %v after losing its server (TTL %v)", took.Round(time.Millisecond), h.TTL)
		}
	case <-time.After(h.TTL + 10*time.Second):
		t.Fatalf("leader still leading %v after losing its server", h.TTL+10*time.Second)
	}
	// The point of stepping down early: the cut-off leader must have
	// stopped before the server let anyone else lead.
	st := w.nextStart(h.TTL+h.TTLSlack+10*time.Second, b)
	if !stoppedAt.Before(st.at) {
		t.Errorf("b started leading at %v, before the cut-off a stepped down at %v", st.at, stoppedAt)
	}
	t.Logf("b took over %v after the cut", st.at.Sub(cut).Round(time.Millisecond))
	if m := w.maxSeen.Load(); m != 1 {
		t.Errorf("%d leader callbacks ran at once; want 1", m)
	}
}
