//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
)

// Informer convergence: writers change random keys while the server is
// restarted (and, on etcd, its history compacted); when they stop, the
// informer's cache must equal a List of the prefix and its handler must
// have seen every key's final state.

const (
	infKeys     = 40
	infWriters  = 3
	infDuration = 12 * time.Second
	// convergeBound is how long after the writers stop the informer may
	// take to converge: a reconnect with backoff, a re-list.
	convergeBound = 45 * time.Second
)

func TestInformerConvergence(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			forEachSeed(t, func(t *testing.T, seed uint64, rng *rand.Rand) {
				informerRun(t, b, rng)
			})
		})
	}
}

// seenState is what the handler last heard of a key.
type seenState struct {
	present bool
	value   string
}

func informerRun(t *testing.T, backend string, rng *rand.Rand) {
	tl := newTimeline(t)
	srv := startServer(t, backend)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() kv.Store {
		s, err := srv.client.open(ctx, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	prefix := fmt.Sprintf("chaos/informer/%08x", rng.Uint32())
	infStore := open()
	var proxy *testenv.Proxy
	if backend == "etcd" {
		// The informer reaches etcd through a proxy, so that it can be cut
		// off while the history it would resume from is compacted away.
		u, err := url.Parse(srv.client.Endpoints[0])
		if err != nil {
			t.Fatal(err)
		}
		proxy = testenv.NewProxy(t, u.Host)
		cfg := srv.client
		cfg.Endpoints = []string{"http://" + proxy.Addr()}
		s, err := cfg.open(ctx, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		infStore = s
	}
	inf, err := informer.New(infStore, informer.Config[string]{
		Prefix:  prefix,
		Decode:  func(_ string, v []byte) (string, error) { return string(v), nil },
		Backoff: informer.Backoff{Initial: 100 * time.Millisecond, Max: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]seenState{}
	tombstones := 0
	_, err = inf.AddEventHandler(informer.Handler[string]{
		OnAdd: func(k, v string, _ bool) {
			mu.Lock()
			seen[k] = seenState{true, v}
			mu.Unlock()
		},
		OnUpdate: func(k, _, v string) {
			mu.Lock()
			seen[k] = seenState{true, v}
			mu.Unlock()
		},
		OnDelete: func(k, _ string, final bool) {
			mu.Lock()
			seen[k] = seenState{}
			if !final {
				tombstones++
			}
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- inf.Run(ctx) }()
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	if err := inf.WaitForCacheSync(sctx); err != nil {
		t.Fatalf("WaitForCacheSync: %v", err)
	}
	scancel()

	deadline := time.Now().Add(infDuration)
	var wg sync.WaitGroup
	var writes, failed sync.Map
	for w := range infWriters {
		s := open()
		wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
		wg.Go(func() {
			for seq := 0; time.Now().Before(deadline); seq++ {
				k := fmt.Sprintf("%s/k%02d", prefix, wrng.IntN(infKeys))
				octx, ocancel := context.WithTimeout(ctx, opTimeout)
				var err error
				if wrng.IntN(4) == 0 {
					err = s.Delete(octx, k)
					if errors.Is(err, kv.ErrKeyNotFound) {
						err = nil
					}
				} else {
					err = s.Put(octx, k, []byte(fmt.Sprintf("w%d-%d", w, seq)), nil)
				}
				ocancel()
				if err != nil {
					failed.Store(k, true)
					pause(50 * time.Millisecond) // the server is likely away
					continue
				}
				writes.Store(k, true)
			}
		})
	}
	// Two restarts, and on etcd a compaction of everything written so far
	// between them, while the informer follows.
	pause(infDuration / 4)
	srv.bounce(t, tl, time.Duration(200+rng.IntN(1300))*time.Millisecond)
	pause(infDuration / 4)
	if proxy != nil {
		tl.say("FAULT  cut the informer off etcd")
		proxy.Cut()
		pause(500 * time.Millisecond) // writes go on meanwhile
		compactEtcd(t, tl, srv.client.Endpoints)
		proxy.Heal()
		tl.say("       informer reconnects")
	}
	pause(infDuration / 8)
	srv.bounce(t, tl, time.Duration(200+rng.IntN(1300))*time.Millisecond)
	wg.Wait()
	tl.say("writers stopped")

	// The truth, read with the same client as the informer's (a
	// Consistent read where the backend has one).
	check := open()
	var want map[string]string
	converged := func() (bool, string) {
		lctx, lcancel := context.WithTimeout(ctx, opTimeout)
		defer lcancel()
		pairs, err := check.List(lctx, prefix, &kv.ReadOptions{Consistent: true})
		if err != nil {
			return false, "List: " + err.Error()
		}
		want = map[string]string{}
		for _, p := range pairs {
			want[p.Key] = string(p.Value)
		}
		var diffs []string
		for k, v := range want {
			if got, ok := inf.Get(k); !ok || got != v {
				diffs = append(diffs, fmt.Sprintf("cache %s=%q (present %v), store %q", k, got, ok, v))
			}
		}
		for _, k := range inf.Keys() {
			if _, ok := want[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("cache has %s, store does not", k))
			}
		}
		mu.Lock()
		for k := range infKeysUnder(prefix) {
			got := seen[k]
			v, ok := want[k]
			if got.present != ok || got.value != v {
				diffs = append(diffs, fmt.Sprintf("handler's last view of %s: %+v, store: %q (present %v)", k, got, v, ok))
			}
		}
		mu.Unlock()
		sort.Strings(diffs)
		return len(diffs) == 0, strings.Join(diffs, "\n")
	}
	start := time.Now()
	var why string
	for {
		ok, w := converged()
		if ok {
			break
		}
		why = w
		if time.Since(start) > convergeBound {
			t.Fatalf("%s: not converged %v after the writers stopped:\n%s", backend, convergeBound, why)
		}
		pause(50 * time.Millisecond) // polling for convergence
	}
	took := time.Since(start)
	n := 0
	writes.Range(func(any, any) bool { n++; return true })
	mu.Lock()
	tb := tombstones
	mu.Unlock()
	t.Logf("%s: converged %v after the writers stopped; %d keys in the store, %d tombstones delivered",
		backend, took.Round(time.Millisecond), len(want), tb)
	select {
	case err := <-runDone:
		t.Fatalf("informer Run returned during the run: %v", err)
	default:
	}
	if err := inf.Check(); err != nil {
		t.Errorf("informer Check after convergence: %v", err)
	}
	cancel()
	if err := <-runDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("informer Run: %v, want nil or context.Canceled", err)
	}
}

// infKeysUnder lists every key the writers may have touched.
func infKeysUnder(prefix string) map[string]bool {
	m := map[string]bool{}
	for i := range infKeys {
		m[fmt.Sprintf("%s/k%02d", prefix, i)] = true
	}
	return m
}

// compactEtcd compacts the server's history up to its current revision.
func compactEtcd(t *testing.T, tl *timeline, endpoints []string) {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "chaos/compact-probe")
	if err != nil {
		t.Fatalf("etcd revision: %v", err)
	}
	if _, err := c.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatalf("compact: %v", err)
	}
	tl.say("FAULT  compacted etcd's history up to revision %d", resp.Header.Revision)
}
