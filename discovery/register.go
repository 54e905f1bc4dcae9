package discovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
)

// Defaults of RegisterOptions.
const (
	DefaultTTL              = 10 * time.Second
	DefaultHealthInterval   = time.Second
	DefaultFailureThreshold = 3
	DefaultSuccessThreshold = 2
)

// RegisterOptions tune Register. A nil *RegisterOptions means the zero
// value: every field at its default.
type RegisterOptions struct {
	// Prefix is the directory of all services. Default DefaultPrefix.
	Prefix string
	// TTL bounds how long the record outlives a process that died without
	// deregistering: it is a KeepAlive write, renewed by the store while
	// it is open and reachable. Default DefaultTTL; a TTL below the
	// backend's minimum fails Register with a *kv.TTLError.
	TTL time.Duration
	// Health, optional, is asked every HealthInterval whether the instance
	// should receive traffic. After FailureThreshold failures in a row the
	// record is withdrawn (deleted); after SuccessThreshold successes in a
	// row it is published again. The thresholds keep a check that fails
	// now and then from making the instance flap. Register asks once
	// before the first write: an instance unhealthy from the start is not
	// published until it has passed SuccessThreshold checks.
	Health func(ctx context.Context) error
	// HealthInterval is the period of Health, and the timeout of each
	// call. Default DefaultHealthInterval.
	HealthInterval time.Duration
	// FailureThreshold and SuccessThreshold: see Health. Defaults
	// DefaultFailureThreshold and DefaultSuccessThreshold.
	FailureThreshold int
	SuccessThreshold int
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Metrics, optional, records whether the record is published, its
	// withdrawals, and its losses and restores (see NewMetrics).
	Metrics *Metrics
}

func (o *RegisterOptions) withDefaults() (RegisterOptions, error) {
	var r RegisterOptions
	if o != nil {
		r = *o
	}
	if r.TTL == 0 {
		r.TTL = DefaultTTL
	}
	if r.HealthInterval == 0 {
		r.HealthInterval = DefaultHealthInterval
	}
	if r.FailureThreshold == 0 {
		r.FailureThreshold = DefaultFailureThreshold
	}
	if r.SuccessThreshold == 0 {
		r.SuccessThreshold = DefaultSuccessThreshold
	}
	if r.Logger == nil {
		r.Logger = zap.NewNop()
	}
	switch {
	case r.TTL < 0:
		return r, fmt.Errorf("%w: negative TTL %v", ErrInvalidInstance, r.TTL)
	case r.HealthInterval < 0:
		return r, fmt.Errorf("%w: negative HealthInterval %v", ErrInvalidInstance, r.HealthInterval)
	case r.FailureThreshold < 0 || r.SuccessThreshold < 0:
		return r, fmt.Errorf("%w: negative threshold (failure %d, success %d)", ErrInvalidInstance, r.FailureThreshold, r.SuccessThreshold)
	}
	return r, nil
}

// Registration is one instance registered by Register. Its methods are safe
// for concurrent use.
type Registration struct {
	store   kv.Store
	key     string
	value   []byte
	opts    RegisterOptions
	log     *zap.Logger
	metrics *registrationMetrics // nil without RegisterOptions.Metrics

	cancel context.CancelFunc // stops the health loop (not a write in flight)
	done   chan struct{}      // closed when the health loop has returned (at once without one)

	mu        sync.Mutex // serialises the record's writes with Deregister
	withdrawn bool
	stopped   bool // Deregister was called: nothing publishes again
	deleted   bool // Deregister's delete succeeded
	lost      bool // the record went while published; the store restores it
}

// Register publishes inst as an instance of service in s, under
// "<Prefix>/<service>/<inst.ID>", and keeps it there while s is open and
// reachable: the record is a KeepAlive write, so it is gone within TTL
// after the process dies, and the store restores it by itself after it
// lost and regained its session or lease. Deregister removes it at once.
//
// Register returns once the record is written (or, with a Health check
// that fails at once, withdrawn from the start). Its ctx bounds that first
// write only; the Registration lives until Deregister or s.Close.
func Register(ctx context.Context, s kv.Store, service string, inst Instance, opts *RegisterOptions) (*Registration, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	dir, err := serviceDir(o.Prefix, service)
	if err != nil {
		return nil, err
	}
	value, err := encode(inst)
	if err != nil {
		return nil, err
	}
	// Checked before the health check: an instance unhealthy at first
	// writes nothing yet, so no write would say it.
	if err := kv.CheckStoreWriteOptions(s, &kv.WriteOptions{TTL: o.TTL, KeepAlive: true}); err != nil {
		return nil, fmt.Errorf("discovery: register %q: %w", dir+"/"+inst.ID, err)
	}
	r := &Registration{
		store: s, key: dir + "/" + inst.ID, value: value, opts: o,
		log:  o.Logger.With(zap.String("service", service), zap.String("instance", inst.ID)),
		done: make(chan struct{}),
	}
	if o.Metrics != nil {
		r.metrics = &registrationMetrics{m: o.Metrics, service: service, instance: inst.ID}
	}
	healthy := true
	if o.Health != nil {
		healthy = r.check(ctx) == nil
	}
	if healthy {
		if err := r.publish(ctx); err != nil {
			return nil, fmt.Errorf("discovery: register %q: %w", r.key, err)
		}
	} else {
		r.withdrawn = true
		r.log.Warn("discovery: instance unhealthy at registration: not published until its health check passes")
	}
	r.metrics.setPublished(healthy)
	lctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if o.Health == nil && o.Metrics == nil {
		// Nothing to check and nobody to tell: the record is the store's
		// KeepAlive key alone, restored by the store after a loss. A
		// watch of it would cost a goroutine and a read per registration
		// (measured: about 0.15 ms more from Register to a Watcher
		// elsewhere seeing it on ZooKeeper) for nothing.
		close(r.done)
		return r, nil
	}
	go r.run(lctx)
	return r, nil
}

// writeContext bounds one write of the health loop. It is not derived
// from the loop's ctx: Deregister must not cancel a write in flight,
// which could then still land on the server after its delete; it waits
// for it instead. A write that takes longer than the TTL is pointless.
func (r *Registration) writeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.opts.TTL)
}

// Key is the record's key in the store.
func (r *Registration) Key() string { return r.key }

// Withdrawn reports whether the record is currently withdrawn by the
// health check (or deregistered).
func (r *Registration) Withdrawn() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.withdrawn || r.stopped
}

// Deregister stops the health checks and deletes the record at once. A
// health-loop write in flight is waited for (within ctx), not cancelled:
// cancelled, it might still land after the delete. After Deregister
// returns, nothing of the Registration writes again. If the delete fails
// (ctx ended, store unreachable), the error says so, a later Deregister
// tries again, and the record goes within TTL once the store is closed.
// Once the delete succeeded, Deregister returns nil.
func (r *Registration) Deregister(ctx context.Context) error {
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
		return fmt.Errorf("discovery: deregister %q: waiting for the health loop's write in flight: %w", r.key, ctx.Err())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.deleted {
		return nil
	}
	if err := r.store.Delete(ctx, r.key); err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
		return fmt.Errorf("discovery: deregister %q: %w", r.key, err)
	}
	r.deleted = true
	r.metrics.deregistered()
	return nil
}

func (r *Registration) publish(ctx context.Context) error {
	return r.store.Put(ctx, r.key, r.value, &kv.WriteOptions{TTL: r.opts.TTL, KeepAlive: true})
}

func (r *Registration) check(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.HealthInterval)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("discovery: health check panicked: %v", p)
		}
	}()
	return r.opts.Health(ctx)
}

// run follows the record until ctx ends or the store is closed, and runs
// the health checks if there are any, withdrawing and publishing the
// record as the thresholds say. A watch of the record tells it that the
// record was lost (and restored, by the store) and that the store closed:
// a healthy instance writes nothing, so no write would.
func (r *Registration) run(ctx context.Context) {
	defer close(r.done)
	closed := false // the store closed: the record went with it
	defer func() {
		if closed {
			r.metrics.deregistered()
		}
	}()
	var tick <-chan time.Time
	if r.opts.Health != nil {
		t := time.NewTicker(r.opts.HealthInterval)
		defer t.Stop()
		tick = t.C
	}
	// A failed or broken watch is opened again after retryWatch.
	retry := time.NewTimer(retryWatch)
	retry.Stop()
	defer retry.Stop()
	var updates <-chan kv.KeyUpdate
	later := func() { updates = nil; retry.Reset(retryWatch) } // watch again after retryWatch
	watch := func() bool {
		ch, err := r.store.Watch(ctx, r.key, nil)
		switch {
		case errors.Is(err, kv.ErrClosed):
			closed = true
			return false
		case err != nil:
			later()
			r.log.Debug("discovery: watching the record failed; retrying", zap.Error(err))
		default:
			updates = ch
		}
		return true
	}
	if !watch() {
		return
	}
	var failures, successes int
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			if !watch() {
				return
			}
			continue
		case u, ok := <-updates:
			switch {
			case ctx.Err() != nil:
				return
			case !ok || errors.Is(u.Err, kv.ErrClosed):
				if ok || r.storeClosed(ctx) {
					closed = true
					return // the record went with the store
				}
				later()
			case u.Err != nil:
				later()
			default:
				r.observe(u.Pair != nil)
			}
			continue
		case <-tick:
		}
		err := r.check(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures, successes = failures+1, 0
		} else {
			failures, successes = 0, successes+1
		}
		if werr := r.act(failures, successes, err); errors.Is(werr, kv.ErrClosed) {
			closed = true
			return // the record went with the store
		}
	}
}

// retryWatch is how long a failed watch of the record waits to be opened
// again.
const retryWatch = time.Second

// observe notes what the watch of the record saw: gone while published
// (lost with the store's session or lease, or deleted by someone else),
// or back after that.
func (r *Registration) observe(present bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.stopped:
	case !present && !r.withdrawn && !r.lost:
		r.lost = true
		r.metrics.recordLost()
		r.log.Warn("discovery: record gone from the store while registered (its session or lease was lost, or someone deleted it); the store restores a lost one")
	case present && r.lost:
		r.lost = false
		r.metrics.recordRestored()
		r.log.Info("discovery: record back in the store")
	}
}

// storeClosed reports whether the store is closed, after a watch of the
// record ended without saying why.
func (r *Registration) storeClosed(ctx context.Context) bool {
	_, err := r.store.Exists(ctx, r.key, nil)
	return errors.Is(err, kv.ErrClosed)
}

// act withdraws or publishes the record after a check, as the thresholds
// say, and returns the write's error if one failed.
func (r *Registration) act(failures, successes int, checkErr error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil
	}
	wctx, cancel := r.writeContext()
	defer cancel()
	switch {
	case !r.withdrawn && failures >= r.opts.FailureThreshold:
		if err := r.store.Delete(wctx, r.key); err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
			r.log.Warn("discovery: withdrawing the unhealthy instance failed; retrying at the next check", zap.Error(err))
			return err
		}
		r.withdrawn, r.lost = true, false
		r.metrics.withdrawn()
		r.log.Warn("discovery: instance withdrawn: health check failing", zap.Int("failures", failures), zap.Error(checkErr))
	case r.withdrawn && successes >= r.opts.SuccessThreshold:
		if err := r.publish(wctx); err != nil {
			r.log.Warn("discovery: publishing the recovered instance failed; retrying at the next check", zap.Error(err))
			return err
		}
		r.withdrawn = false
		r.metrics.setPublished(true)
		r.log.Info("discovery: instance published again: health check passing", zap.Int("successes", successes))
	}
	return nil
}
