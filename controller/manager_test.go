package controller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regentkv/regent/controller"
	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/memory"
)

// backend opens clients of one store, as separate processes would, and
// can crash one (its locks are not released: the server must expire them).
type backend struct {
	name  string
	new   func(t testing.TB) kv.Store
	crash func(t testing.TB, s kv.Store)
	ttl   time.Duration
}

func backends(t *testing.T) []backend {
	mem := memory.NewBackend()
	t.Cleanup(mem.Close)
	bs := []backend{{
		name:  "memory",
		new:   func(testing.TB) kv.Store { return mem.Client() },
		crash: func(_ testing.TB, s kv.Store) { s.(*memory.Store).Kill() },
		ttl:   2 * time.Second,
	}}
	if testing.Short() {
		return bs
	}
	addr := strings.TrimPrefix(testenv.Etcd(t)[0], "http://")
	cut := testenv.NewCutter(addr, func(t testing.TB, addr string) kv.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := etcd.New(ctx, etcd.Config{Endpoints: []string{addr}, Root: "controller", DialTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
	return append(bs, backend{name: "etcd", new: cut.New, crash: cut.Cut, ttl: 3 * time.Second})
}

// replica is one process of the gating test: a Manager with an election,
// an informer of desired/ and a controller that copies each desired value
// to actual/, with a fenced write, tagged with who wrote it.
type replica struct {
	id     string
	store  kv.Store
	mgr    *controller.Manager
	inf    *informer.Informer[string]
	cancel context.CancelFunc
	done   chan error
}

// journal records which replica reconciled what, to prove only the leader
// does.
type journal struct {
	mu      sync.Mutex
	entries []string // "id key"
}

func (j *journal) add(id, key string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, id+" "+key)
}

func (j *journal) since(n int) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries[n:]...)
}

func (j *journal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.entries)
}

func startReplica(t *testing.T, b backend, id string, j *journal) *replica {
	t.Helper()
	r := &replica{id: id, store: b.new(t), done: make(chan error, 1)}
	mgr, err := controller.NewManager(controller.ManagerConfig{
		LeaderElection: &controller.LeaderElection{Store: r.store, Config: election.Config{
			Key: "gating/election", Identity: id, TTL: b.ttl,
		}},
		HealthAddr:      "127.0.0.1:0",
		ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.mgr = mgr
	r.inf, err = controller.NewInformer(mgr, r.store, informer.Config[string]{Prefix: "gating/desired", Decode: decodeString, StaleAfter: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rec := controller.ReconcileFunc[string](func(ctx context.Context, req controller.Request[string]) (controller.Result, error) {
		term, ok := election.TermFrom(ctx)
		if !ok {
			return controller.Result{}, controller.Terminal(errors.New("reconcile ctx carries no term"))
		}
		j.add(id, req.Key)
		actual := "gating/actual/" + strings.TrimPrefix(req.Key, "gating/desired/")
		if !req.Exists {
			err := term.GuardedDelete(ctx, actual)
			if errors.Is(err, kv.ErrKeyNotFound) {
				err = nil
			}
			return controller.Result{}, err
		}
		return controller.Result{}, term.GuardedPut(ctx, actual, []byte(req.Object+"@"+id), nil)
	})
	c, err := controller.New(controller.Config[string]{Name: "converge", Informer: r.inf, Reconciler: rec, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Watching what the controller writes is what lets a new leader find
	// the orphans of deletes its predecessor did not finish: they are not
	// in the desired cache any more, but they are in this one.
	actual, err := controller.NewInformer(mgr, r.store, informer.Config[string]{Prefix: "gating/actual", Decode: decodeString, StaleAfter: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	owner := func(key, _ string) []string {
		return []string{"gating/desired/" + strings.TrimPrefix(key, "gating/actual/")}
	}
	if err := controller.Watch(c, actual, owner); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- mgr.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("replica %s: Run = %v", id, err)
		}
	})
	select {
	case <-mgr.Started():
	case err := <-r.done:
		t.Fatalf("replica %s: Run = %v before starting", id, err)
	}
	return r
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// converged reports whether actual/ mirrors desired/ as written by leader.
func converged(t testing.TB, s kv.Store, want map[string]string, leader string) func() bool {
	return func() bool {
		pairs, err := s.List(ctxFor(t, 5*time.Second), "gating/actual", nil)
		if err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
			return false
		}
		got := map[string]string{}
		for _, p := range pairs {
			got[strings.TrimPrefix(p.Key, "gating/actual/")] = string(p.Value)
		}
		if len(got) != len(want) {
			return false
		}
		for k, v := range want {
			if got[k] != v+"@"+leader {
				return false
			}
		}
		return true
	}
}

func leaderOf(t testing.TB, rs []*replica) *replica {
	t.Helper()
	var leader *replica
	poll.Until(t, wait, "no replica leads", func() bool {
		n := 0
		for _, r := range rs {
			if r.mgr.IsLeader() {
				leader, n = r, n+1
			}
		}
		return n == 1
	})
	return leader
}

// TestManagerLeaderGating: of three replicas only the leader reconciles;
// standbys keep a warm cache and are ready; after a graceful handover and
// after a crash, the new leader converges everything, including changes
// made while nobody led.
func TestManagerLeaderGating(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			admin := b.new(t)
			want := map[string]string{"a": "1", "b": "1", "c": "1"}
			for k, v := range want {
				put(t, admin, "gating/desired/"+k, v)
			}
			j := &journal{}
			var rs []*replica
			for i := range 3 {
				rs = append(rs, startReplica(t, b, fmt.Sprintf("r%d", i), j))
			}

			for round, how := range []string{"graceful", "crash"} {
				leader := leaderOf(t, rs)
				mark := j.len()
				poll.Until(t, wait, fmt.Sprintf("round %d: %s did not converge", round, leader.id), converged(t, admin, want, leader.id))
				for _, e := range j.since(0)[mark:] {
					if !strings.HasPrefix(e, leader.id+" ") {
						t.Errorf("round %d: %q reconciled while %s led", round, e, leader.id)
					}
				}
				for _, r := range rs {
					if r == leader {
						continue
					}
					// Standbys warm their caches without leading, and are
					// ready: they could take over at once.
					poll.Until(t, wait, fmt.Sprintf("round %d: standby %s has a cold cache", round, r.id), r.inf.HasSynced)
					if r.mgr.IsLeader() {
						t.Errorf("round %d: standby %s leads too", round, r.id)
					}
					poll.Until(t, wait, fmt.Sprintf("round %d: standby %s is not ready", round, r.id), func() bool {
						code, _ := get(t, "http://"+r.mgr.Addr().String()+"/readyz")
						return code == http.StatusOK
					})
				}

				// Change the desired state, then lose the leader.
				want["a"] = fmt.Sprint(round + 2)
				put(t, admin, "gating/desired/a", want["a"])
				gone := []string{"b", "c"}[round]
				delete(want, gone)
				del(t, admin, "gating/desired/"+gone)
				start := time.Now()
				switch how {
				case "graceful":
					leader.cancel()
					if err := <-leader.done; err != nil {
						t.Fatalf("graceful stop of %s: %v", leader.id, err)
					}
					leader.done <- nil // for the cleanup
				case "crash":
					b.crash(t, leader.store)
				}
				var rest []*replica
				for _, r := range rs {
					if r != leader {
						rest = append(rest, r)
					}
				}
				next := leaderOf(t, rest)
				poll.UntilFunc(t, 2*b.ttl+wait, func() string {
					pairs, err := admin.List(ctxFor(t, 5*time.Second), "gating/actual", nil)
					var got []string
					for _, p := range pairs {
						got = append(got, p.Key+"="+string(p.Value))
					}
					return fmt.Sprintf("after the %s loss of %s, %s did not converge: actual %v (%v), want %v; journal %v",
						how, leader.id, next.id, got, err, want, j.since(mark))
				}, converged(t, admin, want, next.id))
				t.Logf("%s: %s loss of %s: %s converged after %v", b.name, how, leader.id, next.id, time.Since(start).Round(time.Millisecond))
				if how == "crash" {
					// The crashed replica's cache is stale: it says so.
					poll.Until(t, wait, "a crashed replica's /readyz did not fail", func() bool {
						code, body := get(t, "http://"+leader.mgr.Addr().String()+"/readyz")
						return code == http.StatusServiceUnavailable && strings.Contains(body, "[-]informer:/gating/desired")
					})
				}
				rs = rest
			}
		})
	}
}
