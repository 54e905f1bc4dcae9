package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/lock"
)

// demo walks through the store contract and a leader handover on whatever
// stores it is given: newStore opens another client of the same backend, as
// another process would.
func demo(ctx context.Context, out io.Writer, newStore func() (kv.Store, error)) error {
	s, err := newStore()
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	step := func(format string, args ...any) { _, _ = fmt.Fprintf(out, format+"\n", args...) }

	// 1. Writes, reads and one canonical key form.
	if err := s.Put(ctx, "/demo/config/replicas", []byte("3"), nil); err != nil {
		return err
	}
	p, err := s.Get(ctx, "demo/config/replicas/", nil)
	if err != nil {
		return err
	}
	step("put \"/demo/config/replicas\" = 3, read back as \"demo/config/replicas/\": %s = %s (one key: leading and trailing slashes are dropped)", p.Key, p.Value)
	if _, err := s.Get(ctx, "demo/config/missing", nil); errors.Is(err, kv.ErrKeyNotFound) {
		step("missing key: kv.ErrKeyNotFound")
	}

	// 2. Compare-and-swap: the second writer with a stale version loses.
	_, _, err = s.AtomicPut(ctx, p.Key, []byte("4"), p, nil)
	if err != nil {
		return err
	}
	step("compare-and-swap 3 -> 4 by a writer that read 3: ok")
	_, _, err = s.AtomicPut(ctx, p.Key, []byte("5"), p, nil)
	step("compare-and-swap 3 -> 5 by another writer that also read 3: refused with kv.ErrKeyModified: %v", errors.Is(err, kv.ErrKeyModified))

	// 3. A watch starts with the current state and sees every change.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	updates, err := s.Watch(wctx, "demo/flag", nil)
	if err != nil {
		return err
	}
	next := func() kv.KeyUpdate {
		select {
		case u := <-updates:
			return u
		case <-time.After(10 * time.Second):
			return kv.KeyUpdate{Err: errors.New("no watch update within 10s")}
		}
	}
	show := func(u kv.KeyUpdate) string {
		if u.Err != nil {
			return "error: " + u.Err.Error()
		}
		if u.Pair == nil {
			return "absent"
		}
		return string(u.Pair.Value)
	}
	step("watch demo/flag: %s", show(next()))
	if err := s.Put(ctx, "demo/flag", []byte("on"), nil); err != nil {
		return err
	}
	step("watch demo/flag: %s", show(next()))
	if err := s.Delete(ctx, "demo/flag"); err != nil {
		return err
	}
	step("watch demo/flag: %s", show(next()))
	stopWatch()

	// 3b. A TTL key disappears by itself once its TTL has passed (the
	// backend's smallest TTL, at least 2 s).
	if err := ttlDemo(ctx, s, step); err != nil {
		return err
	}

	// 4. A fenced lock: the token grows with each holder, and a holder's
	// guarded write is refused once it has let go.
	m1, err := lock.New(ctx, s, "demo/locks/report")
	if err != nil {
		return err
	}
	if err := m1.Lock(ctx); err != nil {
		return err
	}
	t1 := m1.Token()
	if err := m1.GuardedPut(ctx, "demo/report", []byte("by holder 1"), nil); err != nil {
		return err
	}
	if err := m1.Unlock(ctx); err != nil {
		return err
	}
	m2, err := lock.New(ctx, s, "demo/locks/report")
	if err != nil {
		return err
	}
	if err := m2.Lock(ctx); err != nil {
		return err
	}
	step("lock tokens increase: %v", m2.Token() > t1)
	err = m1.GuardedPut(ctx, "demo/report", []byte("late write by holder 1"), nil)
	step("guarded write after unlock refused: %v", errors.Is(err, kv.ErrNotLocked) || errors.Is(err, kv.ErrLockLost))
	if err := m2.Unlock(ctx); err != nil {
		return err
	}

	// 5. Leader election: two replicas, the leader steps down, the other
	// takes over at once (no TTL wait).
	return electionDemo(ctx, step, newStore)
}

func electionDemo(ctx context.Context, step func(string, ...any), newStore func() (kv.Store, error)) error {
	type replica struct {
		name    string
		store   kv.Store
		elector *election.Elector
		cancel  context.CancelFunc
		done    chan struct{} // closed when Run returned
	}
	leading := make(chan string, 2)
	var replicas []*replica
	defer func() {
		for _, r := range replicas {
			r.cancel()
			<-r.done
			_ = r.store.Close()
		}
	}()
	for _, name := range []string{"replica-a", "replica-b"} {
		st, err := newStore()
		if err != nil {
			return err
		}
		e, err := election.New(ctx, st, election.Config{
			Key: "demo/leader", Identity: name,
			Callbacks: election.Callbacks{OnStartedLeading: func(ctx context.Context) {
				leading <- name
				<-ctx.Done()
			}},
		})
		if err != nil {
			_ = st.Close()
			return err
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &replica{name: name, store: st, elector: e, cancel: cancel, done: make(chan struct{})}
		replicas = append(replicas, r)
		go func() {
			defer close(r.done)
			_ = e.Run(rctx) // nil once rctx ends; the demo ends it itself
		}()
		if name == "replica-a" {
			// Let a win, so the demo's story is the same every run.
			if got := <-leading; got != name {
				return fmt.Errorf("unexpected leader %s", got)
			}
			step("%s leads", name)
		}
	}
	start := time.Now()
	replicas[0].cancel() // replica-a shuts down and releases leadership
	<-replicas[0].done
	select {
	case name := <-leading:
		step("%s leads after the handover (took less than a second: %v)", name, time.Since(start) < time.Second)
	case <-time.After(30 * time.Second):
		return errors.New("no handover within 30s")
	}
	return nil
}

// ttlDemo writes a key with a TTL and watches it go.
func ttlDemo(ctx context.Context, s kv.Store, step func(string, ...any)) error {
	ttl := 2 * time.Second
	if m, ok := s.(interface{ MinTTL() time.Duration }); ok && m.MinTTL() > ttl {
		ttl = m.MinTTL()
	}
	if ttl > 5*time.Second {
		step("TTL key: skipped, this backend's smallest TTL is %v", ttl)
		return nil
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	updates, err := s.Watch(wctx, "demo/session", nil)
	if err != nil {
		return err
	}
	<-updates // the current state: absent
	if err := s.Put(ctx, "demo/session", []byte("alive"), &kv.WriteOptions{TTL: ttl}); err != nil {
		return err
	}
	written := time.Now()
	limit := time.After(ttl + 15*time.Second)
	for {
		select {
		case u := <-updates:
			switch {
			case u.Err != nil:
				return u.Err
			case u.Pair == nil:
				step("TTL key demo/session (TTL %v) is gone by itself after its TTL: %v", ttl, time.Since(written) >= ttl)
				return nil
			}
		case <-limit:
			step("TTL key demo/session (TTL %v) still there %v later: this backend removes expired keys late (docs/backends.md)", ttl, ttl+15*time.Second)
			return nil
		}
	}
}
