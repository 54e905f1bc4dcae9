package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/examples/internal/backend"
	"github.com/regentkv/regent/kv"
)

// Keys of the demo, under one prefix that it clears first.
const (
	prefix      = "singleton"
	electionKey = prefix + "/leader"
	reportKey   = prefix + "/jobs/report"
)

// Pace of the demo.
const (
	period   = 300 * time.Millisecond // the job runs this often while leading
	work     = 50 * time.Millisecond  // one run takes this long
	phase    = 4                      // runs per leader before the next step
	deadline = 2 * time.Minute        // for any one step: the demo never hangs
)

// report is what each run writes at reportKey: the job's state, carried
// from one leader to the next.
type report struct {
	Run     int    `json:"run"`
	Replica string `json:"replica"`
	Token   uint64 `json:"token"`
}

// event is what a replica tells the demo's narrator.
type event struct {
	at      time.Time
	kind    string // "lead", "run", "fail", "stop"
	replica string
	token   uint64
	run     int
	term    *election.Term // on "lead"
	err     error          // on "fail" and "stop"
}

// summary is what the demo checks at the end; a test reads it too.
type summary struct {
	Tokens        []uint64 // term tokens, in the order terms began
	Leaders       []string // who led each term
	Runs          int      // runs whose write the store acknowledged
	MaxInFlight   int32    // most runs in progress at once, all replicas
	StaleErr      error    // the deposed leader's guarded write
	Final         report   // reportKey at the end
	HandoverTook  time.Duration
	FailoverTook  time.Duration
	TTL           time.Duration
	CrashedLeader string
}

// check says what went wrong, if anything.
func (s *summary) check() error {
	var errs []error
	if s.MaxInFlight != 1 {
		errs = append(errs, fmt.Errorf("%d runs were in progress at once", s.MaxInFlight))
	}
	for i := 1; i < len(s.Tokens); i++ {
		if s.Tokens[i] <= s.Tokens[i-1] {
			errs = append(errs, fmt.Errorf("term token %d did not increase past %d", s.Tokens[i], s.Tokens[i-1]))
		}
	}
	if len(s.Tokens) < 3 {
		errs = append(errs, fmt.Errorf("%d terms, want 3 (first leader, handover, failover)", len(s.Tokens)))
	}
	switch {
	case s.StaleErr == nil:
		errs = append(errs, errors.New("the deposed leader's write landed"))
	case !errors.Is(s.StaleErr, kv.ErrLockLost) && !errors.Is(s.StaleErr, kv.ErrNotLocked):
		errs = append(errs, fmt.Errorf("the deposed leader's write failed with %w, want kv.ErrLockLost", s.StaleErr))
	}
	if s.Final.Run != s.Runs {
		errs = append(errs, fmt.Errorf("report says run %d, but %d runs were acknowledged", s.Final.Run, s.Runs))
	}
	if n := len(s.Tokens); n > 0 && s.Final.Token != s.Tokens[n-1] {
		errs = append(errs, fmt.Errorf("report written with token %d, last term's is %d", s.Final.Token, s.Tokens[n-1]))
	}
	return errors.Join(errs...)
}

// replica is one process of the singleton program.
type replica struct {
	*backend.Replica
	elector *election.Elector
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run returned
}

// job is the work that must never run twice at once. inFlight counts runs
// in progress across every replica, which a real deployment could not do;
// the demo does it to show that the election kept it at one.
type job struct {
	events   chan event
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	ctx      context.Context // the demo's: event sends give up when it ends
}

func (j *job) emit(e event) {
	e.at = time.Now()
	select {
	case j.events <- e:
	case <-j.ctx.Done():
	}
}

// lead is OnStartedLeading: run the job every period until leadership
// ends, each run's write fenced by the term.
func (j *job) lead(name string, store kv.Store) func(ctx context.Context) {
	return func(ctx context.Context) {
		term, ok := election.TermFrom(ctx)
		if !ok {
			j.emit(event{kind: "fail", replica: name, err: errors.New("leader ctx carries no term")})
			return
		}
		j.emit(event{kind: "lead", replica: name, token: term.Token, term: term})
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				j.emit(event{kind: "stop", replica: name, token: term.Token, err: context.Cause(ctx)})
				return
			case <-t.C:
			}
			n, err := j.runOnce(ctx, name, store, term)
			if err != nil && ctx.Err() != nil {
				// Leadership ended during the run: its write did not land.
				j.emit(event{kind: "stop", replica: name, token: term.Token, err: fmt.Errorf("%w (run interrupted: %w)", context.Cause(ctx), err)})
				return
			}
			if err != nil {
				j.emit(event{kind: "fail", replica: name, token: term.Token, err: err})
				continue
			}
			j.emit(event{kind: "run", replica: name, token: term.Token, run: n})
		}
	}
}

// runOnce is one run of the job: read the last report, work, write the
// next one through the term, so that only the current leader's write
// lands.
func (j *job) runOnce(ctx context.Context, name string, store kv.Store, term *election.Term) (int, error) {
	now := j.inFlight.Add(1)
	defer j.inFlight.Add(-1)
	for seen := j.maxSeen.Load(); now > seen && !j.maxSeen.CompareAndSwap(seen, now); seen = j.maxSeen.Load() {
	}
	var last report
	p, err := store.Get(ctx, reportKey, nil)
	switch {
	case errors.Is(err, kv.ErrKeyNotFound):
	case err != nil:
		return 0, err
	default:
		if err := json.Unmarshal(p.Value, &last); err != nil {
			return 0, fmt.Errorf("decode %s: %w", reportKey, err)
		}
	}
	w := time.NewTimer(work)
	select {
	case <-ctx.Done():
		w.Stop()
		return 0, context.Cause(ctx)
	case <-w.C:
	}
	next := report{Run: last.Run + 1, Replica: name, Token: term.Token}
	value, err := json.Marshal(next)
	if err != nil {
		return 0, err
	}
	if err := term.GuardedPut(ctx, reportKey, value, nil); err != nil {
		return 0, err
	}
	return next.Run, nil
}

// run is the demo: three replicas, a handover, a crash, and the checks.
func run(ctx context.Context, out io.Writer, cluster *backend.Cluster) (*summary, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	say := func(at time.Time, format string, args ...any) {
		_, _ = fmt.Fprintf(out, "%6.2fs  %s\n", at.Sub(start).Seconds(), fmt.Sprintf(format, args...))
	}
	ttl := max(cluster.MinTTL(), 2*time.Second)
	sum := &summary{TTL: ttl}
	_, _ = fmt.Fprintf(out, "job: every %v while leading, fenced writes to %s; election TTL %v\n", period, reportKey, ttl)

	j := &job{events: make(chan event, 1024), ctx: ctx}
	var replicas []*replica
	var wg sync.WaitGroup
	defer func() {
		// Stop every replica (a graceful release) and wait for it, before
		// the cluster closes their stores.
		for _, r := range replicas {
			r.cancel()
		}
		wg.Wait()
	}()
	for i, name := range []string{"replica-a", "replica-b", "replica-c"} {
		br, err := cluster.NewReplica(ctx, name)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if err := br.Store.DeleteTree(ctx, prefix); err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
				return nil, fmt.Errorf("clear %s: %w", prefix, err)
			}
		}
		e, err := election.New(ctx, br.Store, election.Config{
			Key: electionKey, Identity: name, TTL: ttl,
			Callbacks: election.Callbacks{OnStartedLeading: j.lead(name, br.Store)},
		})
		if err != nil {
			return nil, err
		}
		rctx, rcancel := context.WithCancel(ctx)
		r := &replica{Replica: br, elector: e, cancel: rcancel, done: make(chan struct{})}
		replicas = append(replicas, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(r.done)
			// Run returns nil when rctx ends, or an error once the store
			// is closed; either way this replica is done.
			_ = e.Run(rctx)
		}()
	}
	byName := map[string]*replica{}
	for _, r := range replicas {
		byName[r.Name] = r
	}

	// The narrator: print each event, and wait for the ones the story
	// needs next.
	var terms []*election.Term
	leader := ""
	runsOfLeader := 0
	next := func(want string) (event, error) {
		timeout := time.NewTimer(deadline)
		defer timeout.Stop()
		for {
			var e event
			select {
			case e = <-j.events:
			case <-timeout.C:
				return event{}, fmt.Errorf("no %q event within %v", want, deadline)
			case <-ctx.Done():
				return event{}, ctx.Err()
			}
			switch e.kind {
			case "lead":
				say(e.at, "%s leads (term token %d)", e.replica, e.token)
				terms = append(terms, e.term)
				sum.Tokens = append(sum.Tokens, e.token)
				sum.Leaders = append(sum.Leaders, e.replica)
				leader, runsOfLeader = e.replica, 0
			case "run":
				say(e.at, "run %d by %s (token %d)", e.run, e.replica, e.token)
				sum.Runs++
				runsOfLeader++
			case "fail":
				say(e.at, "run by %s (token %d) failed: %v", e.replica, e.token, e.err)
			case "stop":
				say(e.at, "%s stops leading (token %d): %v", e.replica, e.token, e.err)
			}
			if e.kind == want && (want != "run" || runsOfLeader >= phase) {
				return e, nil
			}
		}
	}

	// 1. The first leader runs the job a few times.
	first, err := next("lead")
	if err != nil {
		return nil, err
	}
	if _, err := next("run"); err != nil {
		return nil, err
	}

	// 2. Handover: the leader resigns; another replica takes over at once,
	// without waiting for a TTL. The old term's writes are refused.
	resigned := time.Now()
	say(resigned, "%s resigns", leader)
	if err := byName[leader].elector.Resign(ctx); err != nil {
		return nil, fmt.Errorf("resign: %w", err)
	}
	second, err := next("lead")
	if err != nil {
		return nil, err
	}
	sum.HandoverTook = second.at.Sub(resigned)
	say(second.at, "handover took %v", sum.HandoverTook.Round(time.Millisecond))
	stale := report{Run: -1, Replica: first.replica, Token: first.token}
	value, _ := json.Marshal(stale)
	sum.StaleErr = terms[0].GuardedPut(ctx, reportKey, value, nil)
	say(time.Now(), "%s writes with its old term (token %d): refused: %v", first.replica, first.token, sum.StaleErr)
	if _, err := next("run"); err != nil {
		return nil, err
	}

	// 3. Failover: the leader's process dies right after a run. Nothing is
	// released; its lease expires after the TTL and another replica leads.
	crashed := time.Now()
	sum.CrashedLeader = leader
	byName[leader].Crash()
	say(crashed, "crash %s (its connections cut: no release; its lease expires within %v)", leader, ttl)
	third, err := next("lead")
	if err != nil {
		return nil, err
	}
	sum.FailoverTook = third.at.Sub(crashed)
	say(third.at, "failover took %v (TTL %v from the crashed leader's last renewal)", sum.FailoverTook.Round(time.Millisecond), ttl)
	if _, err := next("run"); err != nil {
		return nil, err
	}

	// 4. Stop every replica, then read what the job left behind.
	for _, r := range replicas {
		if r.Name != sum.CrashedLeader {
			r.cancel()
			<-r.done
		}
	}
	drain(j.events, func(e event) {
		switch e.kind {
		case "run":
			say(e.at, "run %d by %s (token %d)", e.run, e.replica, e.token)
			sum.Runs++
		case "stop":
			say(e.at, "%s stops leading (token %d): %v", e.replica, e.token, e.err)
		}
	})
	reader := replicas[0]
	if reader.Name == sum.CrashedLeader {
		reader = replicas[1]
	}
	p, err := reader.Store.Get(ctx, reportKey, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", reportKey, err)
	}
	if err := json.Unmarshal(p.Value, &sum.Final); err != nil {
		return nil, fmt.Errorf("decode %s: %w", reportKey, err)
	}
	sum.MaxInFlight = j.maxSeen.Load()
	_, _ = fmt.Fprintf(out, "%s = %s\n", reportKey, p.Value)
	_, _ = fmt.Fprintf(out, "check: %d runs in %d terms, at most %d at a time; tokens %v strictly increase: %v; stale write refused: %v\n",
		sum.Runs, len(sum.Tokens), sum.MaxInFlight, sum.Tokens, increasing(sum.Tokens), sum.StaleErr != nil)
	if err := sum.check(); err != nil {
		return sum, fmt.Errorf("singleton check failed: %w", err)
	}
	_, _ = fmt.Fprintln(out, "ok: the job never ran twice at once, and only the current leader's writes landed")
	return sum, nil
}

// drain hands f what is already in ch, without waiting for more.
func drain(ch <-chan event, f func(event)) {
	for {
		select {
		case e := <-ch:
			f(e)
		default:
			return
		}
	}
}

func increasing(ts []uint64) bool {
	for i := 1; i < len(ts); i++ {
		if ts[i] <= ts[i-1] {
			return false
		}
	}
	return true
}
