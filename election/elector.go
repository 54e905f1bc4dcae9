package election

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/lock"
)

// errResigned is the cause of the leader ctx's end after Resign.
var errResigned = errors.New("election: leader resigned")

// ErrAlreadyRunning: Run was called while another Run of the same Elector
// had not returned (controller and informer use the same name).
var ErrAlreadyRunning = errors.New("election: Run already running")

// Elector campaigns for leadership of one election on behalf of one
// candidate. Create it with New, then call Run. Its methods are safe for
// concurrent use.
type Elector struct {
	cfg   Config
	store kv.Store
	mutex *lock.Mutex

	running chan struct{} // a token: held while Run runs

	mu      sync.Mutex
	term    *Term     // non-nil while leading
	endedAt time.Time // when the last term ended while its callback still ran

	// resignHook, set by a test of this package before Run, runs in Resign
	// between its reading of the current term and its request to end it.
	resignHook func(*Term)
}

// New validates cfg and returns an Elector. It does not campaign until Run.
func New(ctx context.Context, store kv.Store, cfg Config) (*Elector, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	value, err := json.Marshal(Leader{Identity: cfg.Identity})
	if err != nil {
		return nil, err
	}
	m, err := lock.New(ctx, store, cfg.Key, lock.WithTTL(cfg.TTL),
		lock.WithRenewDeadline(cfg.RenewDeadline), lock.WithValue(value))
	if err != nil {
		return nil, fmt.Errorf("election: %w", err)
	}
	e := &Elector{cfg: cfg, store: store, mutex: m,
		running: make(chan struct{}, 1)}
	return e, nil
}

// Run campaigns until ctx ends: it waits for the lock (on a watch, not a
// poll), leads until leadership ends, then campaigns again. When ctx ends
// it steps down, releases leadership at once (no waiting for a TTL), waits
// for OnStartedLeading to return and returns nil. It returns an error only
// if Run is already running or the store was closed.
func (e *Elector) Run(ctx context.Context) error {
	select {
	case e.running <- struct{}{}:
		defer func() { <-e.running }()
	default:
		return fmt.Errorf("election %q: %w", e.cfg.Key, ErrAlreadyRunning)
	}
	log := e.cfg.Logger.With(zap.String("election", e.cfg.Key), zap.String("identity", e.cfg.Identity))

	if cb := e.cfg.Callbacks.OnNewLeader; cb != nil {
		obsCtx, stop := context.WithCancel(ctx)
		leaders, err := Observe(obsCtx, e.store, e.cfg.Key)
		if err != nil {
			stop()
			return fmt.Errorf("election: observe %s: %w", e.cfg.Key, err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := ""
			for l := range leaders {
				if l.Identity != "" && l.Identity != last {
					last = l.Identity
					cb(l.Identity)
				}
			}
		}()
		defer wg.Wait()
		defer stop()
	}

	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(e.cfg.RetryInterval),
		backoff.WithMaxInterval(e.cfg.MaxRetryInterval), backoff.WithMaxElapsedTime(0))
	for ctx.Err() == nil {
		err := e.mutex.Lock(ctx)
		if err == nil {
			err = e.lead(ctx, log)
		}
		switch {
		case err == nil:
			bo.Reset()
			continue
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, kv.ErrClosed):
			return fmt.Errorf("election: %w", err)
		}
		wait := bo.NextBackOff()
		log.Warn("campaign failed; retrying", zap.Error(err), zap.Duration("backoff", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

// lead runs one term: the lock is held when it is called, and released (or
// lost) when it returns.
func (e *Elector) lead(ctx context.Context, log *zap.Logger) error {
	term := &Term{Leader: Leader{Identity: e.cfg.Identity, Token: e.mutex.Token(), Since: time.Now()},
		mutex: e.mutex, released: make(chan struct{}), resign: make(chan struct{})}
	lost := e.mutex.Lost()
	// background: releasing must happen even when ctx has ended.
	background := context.WithoutCancel(ctx)

	leaderCtx, cancel := context.WithCancelCause(context.WithValue(ctx, termKey{}, term))
	term.end = cancel
	e.mu.Lock()
	e.term = term
	e.mu.Unlock()
	e.cfg.Metrics.leading(e.cfg.Key, true)
	log.Info("started leading", zap.Uint64("token", term.Token))

	// The leader record is written beside the leader's work, not before
	// it: it tells observers who leads, while what makes the leader's
	// writes safe is the lock's token, which the Term already carries.
	// Written first, it cost a handover a write (on ZooKeeper two, racing
	// the old leader's removal of its own record). A write that fails ends
	// the term.
	recorded := make(chan error, 1)
	go func() {
		record, err := json.Marshal(term.Leader)
		if err == nil {
			err = e.mutex.GuardedPut(leaderCtx, recordKey(e.cfg.Key), record,
				&kv.WriteOptions{TTL: e.cfg.TTL, KeepAlive: true})
		}
		recorded <- err
	}()

	done := make(chan struct{})
	go func() {
		defer close(done)
		if cb := e.cfg.Callbacks.OnStartedLeading; cb != nil {
			cb(leaderCtx)
		}
	}()

	var cause, recordErr error
	for cause == nil {
		select {
		case <-ctx.Done():
			cause = context.Cause(ctx)
		case <-lost:
			cause = kv.ErrLockLost
		case <-term.resign:
			cause = errResigned
		case <-done:
			cause = errResigned // the leader's work is over: let another lead
		case err := <-recorded:
			recorded = nil // written (or failed): nothing more to hear
			switch {
			case err == nil:
			case leaderCtx.Err() != nil:
				// The term is ending (Run's ctx, a Resign): the write was
				// cut short, it did not fail; the loop hears why next.
			case errors.Is(err, kv.ErrLockLost):
				cause = kv.ErrLockLost // as if lost had closed first: campaign again at once
			default:
				recordErr = fmt.Errorf("election: write leader record: %w", err)
				cause = recordErr
			}
		}
	}
	cancel(cause)
	if recorded != nil {
		// The write ends with leaderCtx; release must see where it landed
		// (it removes the record if it is ours).
		if err := <-recorded; err != nil {
			log.Debug("leader record not written: the term ended first", zap.Error(err))
		}
	}

	e.mu.Lock()
	e.term = nil
	e.endedAt = time.Now()
	e.mu.Unlock()
	e.cfg.Metrics.leading(e.cfg.Key, false)
	log.Info("stopped leading", zap.Uint64("token", term.Token), zap.NamedError("cause", cause))
	if cb := e.cfg.Callbacks.OnStoppedLeading; cb != nil {
		cb()
	}

	// Give the leader's work the chance to stop before anyone else can
	// start: only then is "never two leaders at once" true of the work, not
	// just of the lock. A callback that ignores its ctx delays the release
	// by at most HealthTimeout; fencing protects guarded writes after that.
	t := time.NewTimer(e.cfg.HealthTimeout)
	select {
	case <-done:
	case <-t.C:
		log.Error("leader callback still running after leadership ended; releasing anyway",
			zap.Duration("waited", e.cfg.HealthTimeout))
	}
	t.Stop()
	e.release(background, term, log)
	close(term.released)

	<-done // never lead twice at once in this process
	e.mu.Lock()
	e.endedAt = time.Time{}
	e.mu.Unlock()
	if errors.Is(cause, errResigned) {
		e.yield(ctx)
	}
	return recordErr // Run backs off before campaigning again
}

// yield waits, after a resignation, until another candidate leads, or for
// one TTL if none does, so that resigning hands leadership on even on
// backends whose locks do not queue waiters (Consul): campaigning again at
// once would often win the race against the waiters it meant to let in.
func (e *Elector) yield(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.TTL)
	defer cancel()
	updates, err := e.store.Watch(ctx, recordKey(e.cfg.Key), nil)
	if err != nil {
		return
	}
	for u := range updates {
		if u.Err != nil {
			break
		}
		if u.Pair == nil {
			continue
		}
		if l, err := decodeLeader(u.Pair); err == nil && l.Identity != e.cfg.Identity {
			break
		}
	}
	cancel()
	for range updates { // the store closes the channel once ctx has ended
	}
}

// release gives up the lock, then removes this term's leader record if it
// is still ours. Unlocking first lets the next candidate start within one
// watch round-trip; the record's removal is a compare-and-delete, so it can
// never remove the record the next leader has already written.
func (e *Elector) release(ctx context.Context, term *Term, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.TTL)
	defer cancel()
	if err := e.mutex.Unlock(ctx); err != nil && !errors.Is(err, kv.ErrClosed) {
		log.Warn("could not release leadership; it expires with its TTL", zap.Error(err))
	}
	p, err := e.store.Get(ctx, recordKey(e.cfg.Key), nil)
	if err != nil {
		return
	}
	if l, err := decodeLeader(p); err != nil || l.Identity != term.Identity || l.Token != term.Token {
		return
	}
	if _, err := e.store.AtomicDelete(ctx, p.Key, p); err != nil &&
		!errors.Is(err, kv.ErrKeyModified) && !errors.Is(err, kv.ErrKeyNotFound) {
		log.Warn("could not remove leader record; it expires with its TTL", zap.Error(err))
	}
}

// Resign ends the current term, if this candidate leads, and waits until
// leadership is released or ctx ends. Run then lets another candidate take
// over: it campaigns again only once someone else leads, or after one TTL
// if nobody does.
//
// From inside the term (ctx is the term's own, or derived from it, as the
// ctx OnStartedLeading gets), Resign cannot wait for the release, which
// follows OnStartedLeading's return: it ends the term (that ctx is
// cancelled) and returns nil at once; the release follows when
// OnStartedLeading returns.
func (e *Elector) Resign(ctx context.Context) error {
	e.mu.Lock()
	term := e.term
	e.mu.Unlock()
	if term == nil {
		return nil
	}
	if e.resignHook != nil {
		e.resignHook(term)
	}
	// The request is the term's own: one that arrives after this term
	// ended (and the next began) must not end the next one.
	term.resignOnce.Do(func() { close(term.resign) })
	term.end(errResigned) // the leader's ctx ends now, not when Run's loop notices
	if own, ok := TermFrom(ctx); ok && own == term {
		return nil
	}
	select {
	case <-term.released:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// IsLeader reports whether this candidate leads now, as far as it knows.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term != nil
}

// Term returns the current term, or nil when not leading.
func (e *Elector) Term() *Term {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term
}

// Leader returns the current leader of this election, or ErrNoLeader.
// While this Elector leads, that is its own term: it holds the lock,
// which is authoritative, and its leader record may still be in flight
// (it is written as the term begins, beside OnStartedLeading). Otherwise
// it is the leader record (LeaderOf).
func (e *Elector) Leader(ctx context.Context) (Leader, error) {
	if t := e.Term(); t != nil {
		return t.Leader, nil
	}
	return LeaderOf(ctx, e.store, e.cfg.Key)
}

// Observe follows the leader of this election; see the function Observe.
func (e *Elector) Observe(ctx context.Context) (<-chan Observation, error) {
	return Observe(ctx, e.store, e.cfg.Key)
}

// Check is a health check for /healthz: it fails while a term has ended
// (lost, resigned, cancelled) but OnStartedLeading has not returned for
// longer than HealthTimeout: a stuck leader that keeps working without
// leadership. Renewal itself is the driver's: when it stops, the lost
// signal ends the term within RenewDeadline.
func (e *Elector) Check() error {
	e.mu.Lock()
	ended := e.endedAt
	e.mu.Unlock()
	if !ended.IsZero() {
		if stuck := time.Since(ended); stuck > e.cfg.HealthTimeout {
			return fmt.Errorf("election %s: leader work still running %v after leadership ended", e.cfg.Key, stuck.Round(time.Millisecond))
		}
	}
	return nil
}
