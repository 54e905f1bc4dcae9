package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/regentkv/regent/examples/internal/backend"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv"
)

// Keys of the demo: the config lives at configKey; the informer follows
// the directory above it.
const (
	configDir = "configreader/config"
	configKey = configDir + "/app"
)

const (
	// staleAfter is how long the reader may hear nothing from the store
	// before /readyz fails. Drivers send a progress notice at least every
	// second while idle, so a few seconds of silence means trouble.
	staleAfter = 3 * time.Second
	// syncTimeout bounds the read that waits for the first sync.
	syncTimeout = 10 * time.Second
	// deadline bounds any one wait of the demo: it never hangs.
	deadline = 30 * time.Second
)

// summary is what the demo checks at the end; a test reads it too.
type summary struct {
	Health             []int    // /readyz status at each step
	Live               []int    // /healthz status at each step: always 200
	Changes            []string // old -> new, as the handler saw them
	EarlyReadErr       error    // the read before the informer ran
	Outage             bool     // whether the store-outage step ran
	StaleErr           error    // Check while the store was down
	ServedWhileStale   Config   // what a read returned then
	ServedAfterBadPush Config   // what a read returned after a value that does not decode
	Final              Config
}

func (s *summary) check() error {
	var errs []error
	want := []int{503, 200, 503, 200} // before the sync, synced, bad push, good again
	wantChanges := 1
	if s.ServedAfterBadPush.Replicas != 5 {
		errs = append(errs, fmt.Errorf("after a bad push the reader served %s, want the last good config (replicas 5)", s.ServedAfterBadPush))
	}
	if s.Outage {
		want = append(want, 503, 200)
		wantChanges++
		if !errors.Is(s.StaleErr, informer.ErrStale) {
			errs = append(errs, fmt.Errorf("health while the store was down: got %s, want informer.ErrStale", errText(s.StaleErr)))
		}
		if s.ServedWhileStale.Greeting == "" {
			errs = append(errs, errors.New("no config served while the store was down"))
		}
	}
	for _, c := range s.Live {
		if c != 200 {
			errs = append(errs, fmt.Errorf("/healthz (liveness) went %v: a stale cache must not get the replica restarted", s.Live))
			break
		}
	}
	if !slices.Equal(s.Health, want) {
		errs = append(errs, fmt.Errorf("/readyz went %v, want %v", s.Health, want))
	}
	if len(s.Changes) != wantChanges {
		errs = append(errs, fmt.Errorf("%d change notifications, want %d", len(s.Changes), wantChanges))
	}
	if !errors.Is(s.EarlyReadErr, informer.ErrNotSynced) {
		errs = append(errs, fmt.Errorf("read before sync: got %s, want informer.ErrNotSynced", errText(s.EarlyReadErr)))
	}
	return errors.Join(errs...)
}

// reader is the service's view of its config: reads come from the cache,
// never from the store.
type reader struct {
	inf *informer.Informer[Config]
}

// Get returns the config once the cache has synced (waiting up to
// syncTimeout), and the last known one after that, even while the store is
// unreachable: Check (and /readyz) say whether it may be behind.
func (r *reader) Get(ctx context.Context) (Config, error) {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if err := r.inf.WaitForCacheSync(ctx); err != nil {
		return Config{}, err
	}
	c, ok := r.inf.Get(configKey)
	if !ok {
		return Config{}, fmt.Errorf("no config at %s: %w", configKey, kv.ErrKeyNotFound)
	}
	return c, nil
}

// run is the demo. The "operator" replica writes the config; the
// "service" replica reads it through an informer.
func run(ctx context.Context, out io.Writer, cluster *backend.Cluster) (*summary, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	var outMu sync.Mutex // the handler prints from its own goroutine
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = fmt.Fprintf(out, "%6.2fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	sum := &summary{}

	operator, err := cluster.NewReplica(ctx, "operator")
	if err != nil {
		return nil, err
	}
	service, err := cluster.NewReplica(ctx, "service")
	if err != nil {
		return nil, err
	}
	if err := operator.Store.DeleteTree(ctx, configDir); err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
		return nil, fmt.Errorf("clear %s: %w", configDir, err)
	}
	write := func(c Config) error {
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		return operator.Store.Put(wctx, configKey, v, nil)
	}
	cfg := Config{Greeting: "hello", Replicas: 3, LogLevel: "info"}
	if err := write(cfg); err != nil {
		return nil, err
	}
	say("operator writes %s = %s", configKey, cfg)

	inf, err := informer.New(service.Store, informer.Config[Config]{
		Prefix: configDir, Decode: decodeConfig, StaleAfter: staleAfter,
		// A bad push must not take the config away: the last good one is
		// served, and Check (so /readyz) reports the decode error.
		KeepLastGood: true,
		OnError:      func(key string, err error) { say("bad config at %s ignored: %v", key, err) },
	})
	if err != nil {
		return nil, err
	}
	changes := make(chan string, 16)
	reg, err := inf.AddEventHandler(informer.Handler[Config]{
		Name: "announce",
		OnAdd: func(key string, c Config, _ bool) {
			say("handler: config loaded: %s", c)
		},
		OnUpdate: func(key string, old, c Config) {
			if old == c {
				return
			}
			change := fmt.Sprintf("%s -> %s", old, c)
			say("handler: config changed: %s", change)
			select {
			case changes <- change:
			case <-ctx.Done():
			}
		},
		OnDelete: func(key string, last Config, _ bool) {
			say("handler: config deleted (was %s)", last)
		},
	})
	if err != nil {
		return nil, err
	}
	r := &reader{inf: inf}

	health, err := startHealth(inf.Check)
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = health.close(sctx)
	}()
	probe := func() error {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		code, body, err := health.get(pctx, "/readyz")
		if err != nil {
			return err
		}
		sum.Health = append(sum.Health, code)
		live, _, err := health.get(pctx, "/healthz")
		if err != nil {
			return err
		}
		sum.Live = append(sum.Live, live)
		say("GET /readyz: %d %s; GET /healthz: %d", code, body, live)
		return nil
	}

	// 1. Before the informer runs, a read waits for the sync and gives up
	// with an error that says why.
	early, cancelEarly := context.WithTimeout(ctx, 200*time.Millisecond)
	_, sum.EarlyReadErr = r.Get(early)
	cancelEarly()
	say("read before the informer runs (200ms timeout): %v", sum.EarlyReadErr)
	if err := probe(); err != nil {
		return nil, err
	}

	// 2. Run the informer; the read waits for the first sync.
	var wg sync.WaitGroup
	infCtx, stopInf := context.WithCancel(ctx)
	defer func() {
		stopInf()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = inf.Run(infCtx) // infCtx's error once stopped
	}()
	c, err := r.Get(ctx)
	if err != nil {
		return nil, err
	}
	say("read after the sync: %s", c)
	if err := probe(); err != nil {
		return nil, err
	}

	// 3. A change reaches the handler and the cache. The handler reports
	// changes from its first view on, so wait until it has that view.
	if err := waitSynced(ctx, reg); err != nil {
		return nil, err
	}
	cfg.Replicas = 5
	say("operator sets replicas = 5")
	if err := write(cfg); err != nil {
		return nil, err
	}
	if err := waitChange(ctx, changes, sum); err != nil {
		return nil, err
	}

	// 3b. A bad push: the last good config is still served, and /readyz
	// says why it is not the stored one; a good push clears it.
	say("operator pushes a config that does not decode")
	bctx, bcancel := context.WithTimeout(ctx, deadline)
	err = operator.Store.Put(bctx, configKey, []byte("{not json"), nil)
	bcancel()
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, func() bool { return errors.Is(inf.Check(), informer.ErrDecode) }); err != nil {
		return nil, fmt.Errorf("the bad push was not reported by Check: %w", err)
	}
	if sum.ServedAfterBadPush, err = r.Get(ctx); err != nil {
		return nil, err
	}
	say("read after the bad push: %s (the last good one)", sum.ServedAfterBadPush)
	if err := probe(); err != nil {
		return nil, err
	}
	say("operator pushes the good config again")
	if err := write(cfg); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, func() bool { return inf.Check() == nil }); err != nil {
		return nil, fmt.Errorf("the informer check still fails after the good push: %w", err)
	}
	if err := probe(); err != nil {
		return nil, err
	}

	// 4. The store goes away: reads keep serving the last known config,
	// health says it may be behind; then the store comes back.
	if !cluster.Embedded() {
		say("store outage skipped: it needs the embedded etcd (run without -backend and -endpoints)")
	} else {
		sum.Outage = true
		cfg.LogLevel = "debug"
		afterRestart := func() error {
			say("operator sets logLevel = debug (after the restart)")
			if err := write(cfg); err != nil {
				return fmt.Errorf("write after the restart: %w", err)
			}
			return waitChange(ctx, changes, sum)
		}
		if err := outage(ctx, cluster, r, sum, say, probe, afterRestart); err != nil {
			return nil, err
		}
	}

	if sum.Final, err = r.Get(ctx); err != nil {
		return nil, err
	}
	say("final config: %s", sum.Final)
	if err := sum.check(); err != nil {
		return sum, fmt.Errorf("configreader check failed: %w", err)
	}
	say("ok: config served from the cache throughout; /readyz went %v", sum.Health)
	return sum, nil
}

// outage stops the embedded server, shows the stale cache still serving,
// restarts it, makes a change and waits for the cache to follow again.
func outage(ctx context.Context, cluster *backend.Cluster, r *reader, sum *summary,
	say func(string, ...any), probe, afterRestart func() error) error {
	// Like a real etcd, the server lets open watches drain for up to its
	// request timeout (7 s) as it stops: the store is gone for clients
	// from the start, so the demo watches the health meanwhile.
	say("store stopping")
	stopped := make(chan error, 1)
	go func() { stopped <- cluster.StopServer() }()
	if err := waitFor(ctx, func() bool {
		sum.StaleErr = r.inf.Check()
		return sum.StaleErr != nil
	}); err != nil {
		return fmt.Errorf("cache never went stale: %w", err)
	}
	say("Check: %v", sum.StaleErr)
	c, err := r.Get(ctx)
	if err != nil {
		return fmt.Errorf("read while the store is down: %w", err)
	}
	sum.ServedWhileStale = c
	say("read while the store is down: %s (last known)", c)
	if err := probe(); err != nil {
		return err
	}

	if err := <-stopped; err != nil {
		return err
	}
	say("store stopped")
	sctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	if err := cluster.StartServer(sctx); err != nil {
		return err
	}
	say("store restarted")
	if err := afterRestart(); err != nil {
		return err
	}
	if err := waitFor(ctx, func() bool { return r.inf.Check() == nil }); err != nil {
		return fmt.Errorf("cache never recovered (Check: %s): %w", errText(r.inf.Check()), err)
	}
	say("Check: nil (following the store again)")
	return probe()
}

// waitChange waits for the handler's next change notification.
func waitChange(ctx context.Context, changes <-chan string, sum *summary) error {
	t := time.NewTimer(deadline)
	defer t.Stop()
	select {
	case c := <-changes:
		sum.Changes = append(sum.Changes, c)
		return nil
	case <-t.C:
		return fmt.Errorf("no change notification within %v", deadline)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitFor polls cond until it holds, for at most deadline.
func waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// errText is err's message, or "nil".
func errText(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// waitSynced waits until the handler has been given the cache's content.
func waitSynced(ctx context.Context, reg informer.Registration) error {
	t := time.NewTimer(deadline)
	defer t.Stop()
	select {
	case <-reg.Synced():
		return nil
	case <-t.C:
		return fmt.Errorf("handler %s not synced within %v", reg.Name(), deadline)
	case <-ctx.Done():
		return ctx.Err()
	}
}
