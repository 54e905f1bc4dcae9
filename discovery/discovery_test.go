package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/regentkv/regent/discovery"
	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/memory"
)

// server is one gRPC server instance on loopback, answering the health
// service (enough for the client to tell which instance answered).
func server(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

// runSynced runs w until the test ends (checking that Run then returns
// cleanly) and waits for its first sync.
func runSynced(t *testing.T, ctx context.Context, w *discovery.Watcher) {
	t.Helper()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Watcher.Run: %v", err)
		}
	})
	if err := w.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
}

func ids(is []discovery.Instance) []string {
	out := make([]string, 0, len(is))
	for _, i := range is {
		out = append(out, i.ID)
	}
	return out
}

// TestRegisterWatchResolve: on every backend, three instances register
// (each from its own store, as three processes would), a Watcher and a
// gRPC client using the resolver with round_robin see all three; a
// deregistered instance leaves both at once; an instance whose process
// dies (store cut off, gRPC server still up) leaves within its TTL plus
// the backend's reaping delay, and the client stops sending to it.
func TestRegisterWatchResolve(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			service := fmt.Sprintf("echo-%d", time.Now().UnixNano())
			addrs := map[string]string{}
			regs := map[string]*discovery.Registration{}
			stores := map[string]kv.Store{}
			for i, id := range []string{"a", "b", "c"} {
				addrs[id] = server(t)
				stores[id] = b.new(t)
				zone := "z1"
				if i == 1 {
					zone = "z2"
				}
				r, err := discovery.Register(ctx, stores[id], service,
					discovery.Instance{ID: id, Address: addrs[id], Metadata: map[string]string{"zone": zone}},
					&discovery.RegisterOptions{TTL: b.ttl})
				if err != nil {
					t.Fatalf("Register %s: %v", id, err)
				}
				regs[id] = r
			}
			watcherStore := b.new(t)
			var changes atomic.Int32
			w, err := discovery.NewWatcher(watcherStore, service, &discovery.WatchOptions{OnChange: func([]discovery.Instance) { changes.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			z1, err := discovery.NewWatcher(watcherStore, service, &discovery.WatchOptions{Match: map[string]string{"zone": "z1"}})
			if err != nil {
				t.Fatal(err)
			}
			runSynced(t, ctx, w)
			runSynced(t, ctx, z1)
			if got := ids(w.Instances()); !slices.Equal(got, []string{"a", "b", "c"}) {
				t.Fatalf("Instances = %v, want [a b c]", got)
			}
			if got := ids(z1.Instances()); !slices.Equal(got, []string{"a", "c"}) {
				t.Fatalf("Instances matching zone=z1 = %v, want [a c]", got)
			}
			poll.Until(t, 5*time.Second, "OnChange called for the synced set", func() bool { return changes.Load() > 0 })

			cc, err := grpc.NewClient(discovery.Scheme+":///"+service,
				grpc.WithResolvers(discovery.NewResolverBuilder(watcherStore, nil)),
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin":{}}]}`))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cc.Close() }()
			client := healthpb.NewHealthClient(cc)
			// answered calls the client until the set of instances that
			// answered n calls in a row is want.
			answered := func(what string, want ...string) {
				t.Helper()
				wantAddrs := map[string]bool{}
				for _, id := range want {
					wantAddrs[addrs[id]] = true
				}
				poll.Until(t, 15*time.Second, what, func() bool {
					seen := map[string]bool{}
					for range 3 * len(want) {
						var p peer.Peer
						cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
						_, err := client.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true))
						ccancel()
						if err != nil {
							return false
						}
						seen[p.Addr.String()] = true
					}
					if len(seen) != len(wantAddrs) {
						return false
					}
					for a := range seen {
						if !wantAddrs[a] {
							return false
						}
					}
					return true
				})
			}
			answered("calls spread over a, b and c", "a", "b", "c")

			if err := regs["a"].Deregister(ctx); err != nil {
				t.Fatalf("Deregister: %v", err)
			}
			if err := regs["a"].Deregister(ctx); err != nil {
				t.Fatalf("second Deregister: %v", err)
			}
			poll.Until(t, 5*time.Second, "deregistered a still listed", func() bool {
				return slices.Equal(ids(w.Instances()), []string{"b", "c"})
			})
			answered("calls still reach a after its Deregister", "b", "c")

			crashed := time.Now()
			b.crash(t, stores["c"])
			poll.Until(t, b.ttl+b.reap+5*time.Second, "crashed c still listed", func() bool {
				return slices.Equal(ids(w.Instances()), []string{"b"})
			})
			gone := time.Since(crashed)
			t.Logf("%s: crashed instance unlisted %v after the crash (TTL %v)", b.name, gone.Round(time.Millisecond), b.ttl)
			if gone > b.ttl+b.reap+time.Second {
				t.Errorf("crashed instance unlisted after %v, want within TTL %v + reaping %v (+1s)", gone, b.ttl, b.reap)
			}
			poll.Until(t, 5*time.Second, "the zone=z1 watcher still lists c", func() bool { return len(z1.Instances()) == 0 })
			answered("calls still reach c after its record is gone", "b")
		})
	}
}

// TestHealthWithdrawsAndRestores: with a Health check, the record goes
// after FailureThreshold failures in a row and comes back after
// SuccessThreshold successes in a row, not on a single blip.
func TestHealthWithdrawsAndRestores(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memory.New()
		defer func() { _ = s.Close() }()
		var failing atomic.Bool
		r, err := discovery.Register(t.Context(), s, "api", discovery.Instance{ID: "i1", Address: "127.0.0.1:1"}, &discovery.RegisterOptions{
			TTL: time.Minute, HealthInterval: time.Second, FailureThreshold: 3, SuccessThreshold: 2,
			Health: func(context.Context) error {
				if failing.Load() {
					return errors.New("down")
				}
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = r.Deregister(context.Background()) }()
		listed := func() bool {
			ok, err := s.Exists(t.Context(), r.Key(), nil)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		step := func(d time.Duration) { time.Sleep(d); synctest.Wait() }
		if !listed() || r.Withdrawn() {
			t.Fatal("healthy instance not published at Register")
		}
		// One failure between successes: no flap.
		failing.Store(true)
		step(1500 * time.Millisecond) // check at 1s fails
		failing.Store(false)
		step(time.Second) // check at 2s passes
		if !listed() {
			t.Fatal("withdrawn after a single failed check")
		}
		failing.Store(true)
		step(2 * time.Second) // checks at 3s, 4s fail
		if !listed() {
			t.Fatal("withdrawn after 2 failures, want 3")
		}
		step(time.Second) // third failure at 5s
		if listed() || !r.Withdrawn() {
			t.Fatal("still published after 3 failures in a row")
		}
		failing.Store(false)
		step(time.Second) // one success at 6s
		if listed() {
			t.Fatal("published again after 1 success, want 2")
		}
		step(time.Second) // second at 7s
		if !listed() || r.Withdrawn() {
			t.Fatal("not published again after 2 successes in a row")
		}
		if err := r.Deregister(t.Context()); err != nil {
			t.Fatal(err)
		}
		if listed() {
			t.Fatal("still listed after Deregister")
		}
		failing.Store(false)
		step(5 * time.Second)
		if listed() {
			t.Fatal("health loop published the record after Deregister")
		}
	})
}

// TestUnhealthyAtRegisterIsNotPublished: an instance failing its first
// check is registered withdrawn, and published once it passes.
func TestUnhealthyAtRegisterIsNotPublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memory.New()
		defer func() { _ = s.Close() }()
		var healthy atomic.Bool
		r, err := discovery.Register(t.Context(), s, "api", discovery.Instance{ID: "i1", Address: "127.0.0.1:1"}, &discovery.RegisterOptions{
			TTL: time.Minute, SuccessThreshold: 1,
			Health: func(context.Context) error {
				if !healthy.Load() {
					return errors.New("warming up")
				}
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = r.Deregister(context.Background()) }()
		if ok, _ := s.Exists(t.Context(), r.Key(), nil); ok || !r.Withdrawn() {
			t.Fatal("unhealthy instance published at Register")
		}
		healthy.Store(true)
		time.Sleep(discovery.DefaultHealthInterval)
		synctest.Wait()
		if ok, _ := s.Exists(t.Context(), r.Key(), nil); !ok || r.Withdrawn() {
			t.Fatal("instance not published once healthy")
		}
	})
}

// TestBadInput: bad names, addresses and options are typed errors, and
// unreadable records are ignored by watchers rather than crashing them.
func TestBadInput(t *testing.T) {
	s := memory.New()
	t.Cleanup(func() { _ = s.Close() }) // after the watcher's cleanup
	ctx := t.Context()
	for name, c := range map[string]struct {
		service string
		inst    discovery.Instance
		opts    *discovery.RegisterOptions
	}{
		"empty service":  {"", discovery.Instance{ID: "a", Address: "x:1"}, nil},
		"slash service":  {"a/b", discovery.Instance{ID: "a", Address: "x:1"}, nil},
		"empty id":       {"svc", discovery.Instance{Address: "x:1"}, nil},
		"slash id":       {"svc", discovery.Instance{ID: "a/b", Address: "x:1"}, nil},
		"no address":     {"svc", discovery.Instance{ID: "a"}, nil},
		"negative TTL":   {"svc", discovery.Instance{ID: "a", Address: "x:1"}, &discovery.RegisterOptions{TTL: -time.Second}},
		"bad prefix":     {"svc", discovery.Instance{ID: "a", Address: "x:1"}, &discovery.RegisterOptions{Prefix: "a//b"}},
		"unprintable id": {"svc", discovery.Instance{ID: "a\x00", Address: "x:1"}, nil},
	} {
		if _, err := discovery.Register(ctx, s, c.service, c.inst, c.opts); !errors.Is(err, discovery.ErrInvalidInstance) {
			t.Errorf("%s: Register error %v, want ErrInvalidInstance", name, err)
		}
	}
	if _, err := discovery.Register(ctx, s, "svc", discovery.Instance{ID: "a", Address: "x:1"}, &discovery.RegisterOptions{TTL: time.Nanosecond}); !errors.As(err, new(*kv.TTLError)) {
		t.Errorf("TTL below the backend minimum: %v, want *kv.TTLError", err)
	}
	if _, err := discovery.NewWatcher(s, "a/b", nil); !errors.Is(err, discovery.ErrInvalidInstance) {
		t.Errorf("NewWatcher(a/b): %v, want ErrInvalidInstance", err)
	}
	// A record somebody else wrote badly is skipped; the good one stays.
	if err := s.Put(ctx, "services/svc/bad", []byte("{not json"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "services/svc/liar", []byte(`{"id":"other","address":"x:1"}`), nil); err != nil {
		t.Fatal(err)
	}
	r, err := discovery.Register(ctx, s, "svc", discovery.Instance{ID: "good", Address: "x:1"}, &discovery.RegisterOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Deregister(context.Background()) }()
	w, err := discovery.NewWatcher(s, "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	runSynced(t, ctx, w)
	if got := ids(w.Instances()); !slices.Equal(got, []string{"good"}) {
		t.Fatalf("Instances = %v, want [good]", got)
	}
}

// TestRegistrationRestoredAfterLostSession: a registrant cut off from the
// store for longer than its TTL loses its session or lease, and with it
// the record; once it reaches the store again, the record comes back by
// itself, with no call to Register.
func TestRegistrationRestoredAfterLostSession(t *testing.T) {
	for _, b := range backends(t) {
		if b.heal == nil {
			continue // memory: no session to lose
		}
		t.Run(b.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			service := fmt.Sprintf("restored-%d", time.Now().UnixNano())
			registrant := b.new(t)
			m := discovery.NewMetrics()
			r, err := discovery.Register(ctx, registrant, service, discovery.Instance{ID: "a", Address: "127.0.0.1:1"}, &discovery.RegisterOptions{TTL: b.ttl, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = r.Deregister(context.Background()) }()
			w, err := discovery.NewWatcher(b.new(t), service, nil)
			if err != nil {
				t.Fatal(err)
			}
			runSynced(t, ctx, w)
			listed := func() bool { return len(w.Instances()) == 1 }
			if !listed() {
				t.Fatal("registered instance not listed")
			}
			b.crash(t, registrant)
			poll.Until(t, b.ttl+b.reap+5*time.Second, "record of the cut-off registrant did not expire", func() bool { return !listed() })
			healed := time.Now()
			b.heal(t, registrant)
			poll.Until(t, 20*time.Second, "record not restored after the registrant reached the store again", listed)
			t.Logf("%s: record restored %v after the partition ended", b.name, time.Since(healed).Round(time.Millisecond))
			// The registrant's own watch may or may not have seen the gap
			// (a watch that resumes with history does; one that re-reads
			// sees the restored record): whatever loss it counted, it has
			// counted the restore too, and the record is published.
			c := m.Collectors()
			poll.Until(t, 10*time.Second, "registration metrics did not settle as published", func() bool {
				return testutil.ToFloat64(c.Published.WithLabelValues(service, "a")) == 1 &&
					testutil.ToFloat64(c.Lost.WithLabelValues(service)) == testutil.ToFloat64(c.Restored.WithLabelValues(service))
			})
			t.Logf("%s: losses seen by the registrant: %v", b.name, testutil.ToFloat64(c.Lost.WithLabelValues(service)))
		})
	}
}
