//go:build chaos

package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
)

// Election safety: candidate processes elect a leader that makes fenced
// writes while the scenario kills, pauses and terminates them and restarts
// the server. See the package documentation for what is checked.

const (
	// electionFaults is how many faults a run injects.
	electionFaults = 7
	// leaderBound is how soon after a fault (or the end of the faults) a
	// leader must exist again: the TTL, a server restart, a session
	// expiry and reaping, with room for a loaded CI machine.
	leaderBound = 6*electionTTL + 10*time.Second
	// exitBound is how long a candidate may take to exit after SIGTERM.
	exitBound = 15 * time.Second
)

func TestElectionSafety(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			forEachSeed(t, func(t *testing.T, seed uint64, rng *rand.Rand) {
				electionRun(t, b, rng, false)
			})
		})
	}
}

type faultKind int

const (
	killLeader faultKind = iota
	pauseLeader
	termLeader
	killFollower
	restartServer
	killStoreLeader // the cluster's leader member, restarted after a while
)

var faultNames = [...]string{"SIGKILL leader", "SIGSTOP leader", "SIGTERM leader", "SIGKILL follower", "restart server", "SIGKILL store leader"}

// TestElectionClusterLeaderLoss is the election on a 3-member cluster,
// candidates spread over its members, whose own leader is killed (and
// restarted) among the candidate faults: same checks, and the time
// without accepted fenced writes after the store's leader dies.
func TestElectionClusterLeaderLoss(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			forEachSeed(t, func(t *testing.T, seed uint64, rng *rand.Rand) {
				electionRun(t, b, rng, true)
			})
		})
	}
}

// candidate is one candidate process of the run.
type candidate struct {
	id     string
	proc   *testenv.Process
	events string
	killed int64      // mono of the SIGKILL, 0 if none
	pauses [][2]int64 // [SIGSTOP, SIGCONT] windows
	ended  bool       // killed or terminated on purpose
}

// electionRunState is what one run keeps while it runs.
type electionRunState struct {
	t        *testing.T
	tl       *timeline
	srv      *server
	dir      string
	key      string
	fenced   string
	next     int
	cands    []*candidate
	byID     map[string]*candidate
	mu       sync.Mutex
	observed []observation // leader records seen by the test's observer
}

type observation struct {
	at       int64
	identity string
	token    uint64
}

// failover is one measured recovery.
type failover struct {
	fault faultKind
	took  time.Duration
}

func electionRun(t *testing.T, backend string, rng *rand.Rand, cluster bool) {
	tl := newTimeline(t)
	var srv *server
	if cluster {
		srv = startCluster(t, backend)
	} else {
		srv = startServer(t, backend)
	}
	st := &electionRunState{t: t, tl: tl, srv: srv, dir: t.TempDir(), byID: map[string]*candidate{}}
	run := fmt.Sprintf("%08x", rng.Uint32())
	st.key = "chaos/election/" + run
	st.fenced = "chaos/fenced/" + run

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obsStore, err := st.srv.client.open(ctx, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = obsStore.Close() }()
	obsDone := st.observe(ctx, obsStore)

	n := 3 + rng.IntN(3)
	tl.say("%s: %d candidates, TTL %v, %d faults", backend, n, electionTTL, electionFaults)
	for range n {
		st.spawn()
	}
	if _, _, err := st.waitLeader(0, leaderBound); err != nil {
		t.Fatalf("no first leader: %v", err)
	}

	var failovers []failover
	for range electionFaults {
		pause(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		kind := faultKind(rng.IntN(5))
		if cluster && (kind == restartServer || rng.IntN(3) == 0) {
			kind = killStoreLeader
		}
		if f, ok := st.inject(kind, rng); ok {
			failovers = append(failovers, f)
		}
	}
	// The faults stop: a leader must exist again, and make writes.
	end := mono()
	if _, _, err := st.waitLeader(end, leaderBound); err != nil {
		t.Errorf("no leader within %v after the faults stopped: %v", leaderBound, err)
	}
	tl.say("faults over; stopping every candidate with SIGTERM")
	st.stopAll()
	cancel()
	<-obsDone
	st.check(obsStore, failovers)
}

// spawn starts a new candidate process.
func (st *electionRunState) spawn() *candidate {
	st.t.Helper()
	st.next++
	c := &candidate{id: fmt.Sprintf("c%d", st.next), events: filepath.Join(st.dir, fmt.Sprintf("c%d.events", st.next))}
	args := candidateArgs{Client: st.srv.clientFor(st.next), Identity: c.id, Election: st.key, Fenced: st.fenced, Events: c.events}
	booted := func(context.Context) error {
		for _, ev := range readEvents(c.events) {
			if ev.Kind == "boot" {
				return nil
			}
		}
		return fmt.Errorf("candidate %s has not booted", c.id)
	}
	c.proc = testenv.NewProcess("candidate "+c.id, filepath.Join(st.dir, c.id+".log"), func() *exec.Cmd {
		cmd, err := testenv.ChildCommand("candidate", args)
		if err != nil {
			panic(err)
		}
		return cmd
	}, booted)
	st.t.Cleanup(c.proc.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.proc.Start(ctx); err != nil {
		st.t.Fatal(err)
	}
	st.mu.Lock()
	st.cands = append(st.cands, c)
	st.byID[c.id] = c
	st.mu.Unlock()
	st.tl.say("start candidate %s (pid %d)", c.id, c.proc.PID())
	return c
}

// observe follows the leader record from the test process.
func (st *electionRunState) observe(ctx context.Context, s kv.Store) <-chan struct{} {
	done := make(chan struct{})
	leaders, err := election.Observe(ctx, s, st.key)
	if err != nil {
		st.t.Fatal(err)
	}
	go func() {
		defer close(done)
		for l := range leaders {
			if l.Err != nil {
				st.tl.say("observer: ended: %v", l.Err)
				return
			}
			st.mu.Lock()
			st.observed = append(st.observed, observation{at: mono(), identity: l.Identity, token: l.Token})
			st.mu.Unlock()
			if l.Identity == "" {
				st.tl.say("observer: no leader")
			} else {
				st.tl.say("observer: %s leads (token %d)", l.Identity, l.Token)
			}
		}
	}()
	return done
}

// leaderNow is the candidate the observer last saw leading, if it runs.
func (st *electionRunState) leaderNow() (*candidate, uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.observed) == 0 {
		return nil, 0
	}
	o := st.observed[len(st.observed)-1]
	c := st.byID[o.identity]
	if c == nil || c.ended || !c.proc.Running() {
		return nil, 0
	}
	return c, o.token
}

// waitLeader waits until some candidate has started a term and made an
// accepted write after the mono time since, and returns when that was.
func (st *electionRunState) waitLeader(since int64, bound time.Duration) (*candidate, int64, error) {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		st.mu.Lock()
		cands := append([]*candidate(nil), st.cands...)
		st.mu.Unlock()
		for _, c := range cands {
			for _, ev := range readEvents(c.events) {
				if ev.Kind == "write" && ev.Result == writeAccepted && ev.At > since {
					return c, ev.At, nil
				}
			}
		}
		pause(20 * time.Millisecond) // polling the events files
	}
	return nil, 0, fmt.Errorf("no accepted fenced write within %v", bound)
}

// termStart is when a candidate other than not started a term after since.
func (st *electionRunState) termStart(since int64, not *candidate, bound time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		st.mu.Lock()
		cands := append([]*candidate(nil), st.cands...)
		st.mu.Unlock()
		for _, c := range cands {
			if c == not {
				continue
			}
			for _, ev := range readEvents(c.events) {
				if ev.Kind == "start" && ev.At > since {
					return time.Duration(ev.At - since), nil
				}
			}
		}
		pause(20 * time.Millisecond) // polling the events files
	}
	return 0, fmt.Errorf("no other candidate started a term within %v", bound)
}

// inject applies one fault and waits for the recovery it calls for.
func (st *electionRunState) inject(kind faultKind, rng *rand.Rand) (failover, bool) {
	t, tl := st.t, st.tl
	leader, token := st.leaderNow()
	if leader == nil && kind != restartServer && kind != killStoreLeader {
		tl.say("(no known leader: %s skipped)", faultNames[kind])
		return failover{}, false
	}
	switch kind {
	case killLeader:
		at := mono()
		tl.say("FAULT  SIGKILL leader %s (token %d)", leader.id, token)
		leader.proc.Kill()
		leader.killed, leader.ended = at, true
		st.spawn()
		took, err := st.termStart(at, leader, leaderBound)
		if err != nil {
			t.Errorf("after SIGKILL of the leader: %v", err)
			return failover{}, false
		}
		tl.say("       new term %v after the kill", took)
		return failover{kind, took}, true
	case pauseLeader:
		d := electionTTL + time.Duration(500+rng.IntN(1500))*time.Millisecond
		at := mono()
		tl.say("FAULT  SIGSTOP leader %s (token %d) for %v", leader.id, token, d)
		if err := leader.proc.Pause(); err != nil {
			t.Fatal(err)
		}
		took, err := st.termStart(at, leader, leaderBound)
		if err != nil {
			t.Errorf("while the leader was paused: %v", err)
		} else {
			tl.say("       new term %v after the pause began", took)
		}
		if rest := d - time.Duration(mono()-at); rest > 0 {
			pause(rest)
		}
		if err := leader.proc.Resume(); err != nil {
			t.Fatal(err)
		}
		leader.pauses = append(leader.pauses, [2]int64{at, mono()})
		tl.say("       SIGCONT %s", leader.id)
		if err != nil {
			return failover{}, false
		}
		return failover{kind, took}, true
	case termLeader:
		at := mono()
		tl.say("FAULT  SIGTERM leader %s (token %d)", leader.id, token)
		if err := leader.proc.Terminate(exitBound); err != nil {
			t.Errorf("leader %s on SIGTERM: %v", leader.id, err)
		}
		leader.ended = true
		st.spawn()
		took, err := st.termStart(at, leader, leaderBound)
		if err != nil {
			t.Errorf("after SIGTERM of the leader: %v", err)
			return failover{}, false
		}
		tl.say("       new term %v after the SIGTERM", took)
		return failover{kind, took}, true
	case killFollower:
		st.mu.Lock()
		var followers []*candidate
		for _, c := range st.cands {
			if c != leader && !c.ended && c.proc.Running() && !c.proc.Paused() {
				followers = append(followers, c)
			}
		}
		st.mu.Unlock()
		if len(followers) == 0 {
			return failover{}, false
		}
		f := followers[rng.IntN(len(followers))]
		tl.say("FAULT  SIGKILL follower %s", f.id)
		f.killed, f.ended = mono(), true
		f.proc.Kill()
		st.spawn()
		return failover{}, false
	case killStoreLeader:
		i := st.srv.storeLeader(t)
		m := st.srv.members[i]
		at := mono()
		tl.say("FAULT  SIGKILL %s store leader %s (pid %d)", st.srv.backend, m.name, m.proc.PID())
		m.proc.Kill()
		_, when, err := st.waitLeader(at, leaderBound)
		if err != nil {
			t.Errorf("after the store leader died: %v", err)
		}
		took := time.Duration(when - at)
		if err == nil {
			tl.say("       fenced writes again %v after the store leader was killed", took)
		}
		pause(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if rerr := m.restart(rctx); rerr != nil {
			t.Fatalf("restart %s member %s: %v", st.srv.backend, m.name, rerr)
		}
		tl.say("       %s member %s back (pid %d)", st.srv.backend, m.name, m.proc.PID())
		if err != nil {
			return failover{}, false
		}
		return failover{kind, took}, true
	case restartServer:
		at := mono()
		st.srv.bounce(t, tl, time.Duration(200+rng.IntN(1300))*time.Millisecond)
		_, when, err := st.waitLeader(mono(), leaderBound)
		if err != nil {
			t.Errorf("after the server restart: %v", err)
			return failover{}, false
		}
		took := time.Duration(when - at)
		tl.say("       fenced writes again %v after the server was killed", took)
		return failover{kind, took}, true
	}
	return failover{}, false
}

// stopAll sends SIGTERM to every running candidate: each must exit 0.
func (st *electionRunState) stopAll() {
	st.mu.Lock()
	cands := append([]*candidate(nil), st.cands...)
	st.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cands {
		if c.ended {
			continue
		}
		if !c.proc.Running() {
			st.t.Errorf("candidate %s exited on its own: %v\n%s", c.id, c.proc.ExitErr(), c.proc.Log())
			continue
		}
		wg.Go(func() {
			if err := c.proc.Terminate(exitBound); err != nil {
				st.t.Errorf("candidate %s on SIGTERM: %v\n%s", c.id, err, c.proc.Log())
			}
		})
	}
	wg.Wait()
}

func readEvents(path string) []event {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var evs []event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			evs = append(evs, ev)
		}
	}
	return evs
}

// term is one leadership term as a candidate recorded it.
type term struct {
	c          *candidate
	token      uint64
	start, end int64 // end: the moment the term's ctx ended, or the kill
	lastWrite  event // the last accepted fenced write
}

// check judges the run from the store's contents and the events.
func (st *electionRunState) check(s kv.Store, failovers []failover) {
	t, tl := st.t, st.tl
	var terms []term
	writes := map[string]event{} // fenced key -> its write event
	rejected, rejectedByServer, unknown, failed := 0, 0, 0, 0
	unknownKinds := map[string]int{} // how unknown outcomes were reported
	var lag time.Duration            // longest a callback outlived its term (a write in flight)
	for _, c := range st.cands {
		evs := readEvents(c.events)
		var cur *term
		for _, ev := range evs {
			switch ev.Kind {
			case "start":
				terms = append(terms, term{c: c, token: ev.Token, start: ev.At})
				cur = &terms[len(terms)-1]
			case "end":
				if cur != nil {
					cur.end = ev.At
				}
			case "stop":
				if cur != nil {
					if cur.end == 0 {
						cur.end = ev.At
					}
					lag = max(lag, time.Duration(ev.At-cur.end))
					cur = nil
				}
			case "write":
				writes[ev.Key] = ev
				if cur != nil && ev.Result == writeAccepted {
					cur.lastWrite = ev
				}
				switch ev.Result {
				case writeRejected:
					rejected++
					if !ev.Local {
						rejectedByServer++
					}
				case writeUnknown:
					unknown++
					unknownKinds[firstWords(ev.Err)]++
				case writeFailed:
					failed++
				}
			case "error":
				t.Errorf("candidate %s: %s", c.id, ev.Err)
			}
		}
		if cur != nil {
			if c.killed == 0 {
				t.Errorf("candidate %s: term %d never ended, yet the process was not killed", c.id, cur.token)
			}
			cur.end = c.killed
		}
	}

	// Each term has a token of its own.
	seen := map[uint64]*candidate{}
	for _, tm := range terms {
		if o := seen[tm.token]; o != nil {
			t.Errorf("token %d used by two terms (%s and %s)", tm.token, o.id, tm.c.id)
		}
		seen[tm.token] = tm.c
	}

	// Guarded writes in the store's own order carry non-decreasing tokens;
	// every acknowledged write is there, no refused one is.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pairs, err := s.List(ctx, st.fenced, &kv.ReadOptions{Consistent: true})
	if err != nil {
		t.Fatalf("List the fenced writes: %v", err)
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].Revision < pairs[j].Revision })
	var lastTok uint64
	var lastKey string
	inStore := map[string]bool{}
	for _, p := range pairs {
		if p.Revision == 0 {
			t.Fatalf("fenced write %s has no store revision to order it by", p.Key)
		}
		var v fencedValue
		if err := json.Unmarshal(p.Value, &v); err != nil {
			t.Errorf("fenced write %s: %v", p.Key, err)
			continue
		}
		if v.Token < lastTok {
			t.Errorf("store accepted %s (token %d) after %s (token %d): a deposed leader's write landed after its successor's", p.Key, v.Token, lastKey, lastTok)
		}
		lastTok, lastKey = v.Token, p.Key
		inStore[p.Key] = true
		if ev, ok := writes[p.Key]; ok && (ev.Result == writeRejected || ev.Result == writeFailed) {
			t.Errorf("write %s failed (%s: %s) yet is in the store", p.Key, ev.Result, ev.Err)
		}
	}
	accepted := 0
	for k, ev := range writes {
		if ev.Result == writeAccepted {
			accepted++
			if !inStore[k] {
				t.Errorf("write %s by %s was acknowledged but is not in the store", k, ev.Identity)
			}
		}
	}

	// The leader record never goes back to an older term.
	st.mu.Lock()
	var lastObs observation
	for _, o := range st.observed {
		if o.identity == "" {
			continue
		}
		if o.token < lastObs.token {
			t.Errorf("observer saw %s (token %d) after %s (token %d): the leader record went back to an older term",
				o.identity, o.token, lastObs.identity, lastObs.token)
		}
		lastObs = o
	}
	st.mu.Unlock()

	// Terms of processes that were not paused never overlap.
	overlaps := 0
	for i, a := range terms {
		for _, b := range terms[i+1:] {
			if a.c == b.c || a.pausedDuring() || b.pausedDuring() {
				continue
			}
			if a.start < b.end && b.start < a.end {
				overlaps++
				t.Errorf("terms overlap: %s token %d [%s, %s] (last accepted write made %s, answered %s) and %s token %d [%s, %s] (last accepted write made %s, answered %s)",
					a.c.id, a.token, tl.at(a.start), tl.at(a.end), tl.at(a.lastWrite.Sent), tl.at(a.lastWrite.At),
					b.c.id, b.token, tl.at(b.start), tl.at(b.end), tl.at(b.lastWrite.Sent), tl.at(b.lastWrite.At))
			}
		}
	}

	byKind := map[faultKind][]string{}
	for _, f := range failovers {
		byKind[f.fault] = append(byKind[f.fault], f.took.Round(time.Millisecond).String())
	}
	var figs []string
	for k := range faultNames {
		if d := byKind[faultKind(k)]; len(d) > 0 {
			figs = append(figs, fmt.Sprintf("%s: %s", faultNames[k], strings.Join(d, " ")))
		}
	}
	t.Logf("%s: %d terms, %d fenced writes accepted (%d in the store), %d refused (%d by the server, stale), %d failed unsent, %d unknown; a callback returned at most %v after its term ended; recovery: %s",
		st.srv.backend, len(terms), accepted, len(pairs), rejected, rejectedByServer, failed, unknown, lag.Round(time.Millisecond), strings.Join(figs, "; "))
	if unknown > 0 {
		t.Logf("%s: writes with an unknown outcome, by error: %v", st.srv.backend, unknownKinds)
	}
	tl.say("checked: %d terms, %d overlaps", len(terms), overlaps)
}

// pausedDuring reports whether the term's process was paused while the
// term could have lasted: such a process cannot know it was deposed.
func (tm term) pausedDuring() bool {
	for _, p := range tm.c.pauses {
		if p[0] < tm.end && tm.start < p[1] {
			return true
		}
	}
	return false
}

// firstWords is an error message without its key and addresses, to count
// errors by kind.
func firstWords(msg string) string {
	if i := strings.Index(msg, "kv: "); i >= 0 {
		msg = msg[i:]
	}
	// Addresses and ports vary from error to error.
	msg = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(msg, "127.0.0.1:*")
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}
