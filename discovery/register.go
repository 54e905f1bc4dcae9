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
	store kv.Store
	key   string
	value []byte
	opts  RegisterOptions
	log   *zap.Logger

	cancel context.CancelFunc
	done   chan struct{} // closed when the health loop has returned

	mu        sync.Mutex // serialises the record's writes with Deregister
	withdrawn bool
	ended     bool
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
	r := &Registration{
		store: s, key: dir + "/" + inst.ID, value: value, opts: o,
		log:  o.Logger.With(zap.String("service", service), zap.String("instance", inst.ID)),
		done: make(chan struct{}),
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
	if o.Health == nil {
		close(r.done)
		r.cancel = func() {}
		return r, nil
	}
	lctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.watchHealth(lctx)
	return r, nil
}

// Key is the record's key in the store.
func (r *Registration) Key() string { return r.key }

// Withdrawn reports whether the record is currently withdrawn by the
// health check (or deregistered).
func (r *Registration) Withdrawn() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.withdrawn || r.ended
}

// Deregister stops the health checks and deletes the record at once.
// It is idempotent; after it, nothing of the Registration writes again.
// If the delete fails (ctx ended, store unreachable), the error says so
// and the record still goes within TTL once the store is closed.
func (r *Registration) Deregister(ctx context.Context) error {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return nil
	}
	r.ended = true
	if err := r.store.Delete(ctx, r.key); err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
		return fmt.Errorf("discovery: deregister %q: %w", r.key, err)
	}
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

// watchHealth runs the health checks until ctx ends, withdrawing and
// publishing the record as the thresholds say.
func (r *Registration) watchHealth(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.opts.HealthInterval)
	defer t.Stop()
	var failures, successes int
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
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
		r.mu.Lock()
		var werr error
		switch {
		case !r.withdrawn && failures >= r.opts.FailureThreshold:
			if derr := r.store.Delete(ctx, r.key); derr != nil && !errors.Is(derr, kv.ErrKeyNotFound) {
				werr = derr
				r.log.Warn("discovery: withdrawing the unhealthy instance failed; retrying at the next check", zap.Error(derr))
			} else {
				r.withdrawn = true
				r.log.Warn("discovery: instance withdrawn: health check failing", zap.Int("failures", failures), zap.Error(err))
			}
		case r.withdrawn && successes >= r.opts.SuccessThreshold:
			if perr := r.publish(ctx); perr != nil {
				werr = perr
				r.log.Warn("discovery: publishing the recovered instance failed; retrying at the next check", zap.Error(perr))
			} else {
				r.withdrawn = false
				r.log.Info("discovery: instance published again: health check passing", zap.Int("successes", successes))
			}
		}
		r.mu.Unlock()
		if errors.Is(werr, kv.ErrClosed) {
			// The store is closed: the record is gone with it, and
			// nothing of this Registration can write again.
			return
		}
	}
}
