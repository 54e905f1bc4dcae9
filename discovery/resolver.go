package discovery

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"
	"google.golang.org/grpc/resolver"

	"github.com/regentkv/regent/kv"
)

// Scheme is the gRPC target scheme of NewResolverBuilder's resolvers:
// "regent:///<service>".
const Scheme = "regent"

// NewResolverBuilder returns a gRPC resolver builder for targets
// "regent:///<service>": each ClientConn built with it follows the
// service's instances in s (through a Watcher with opts; OnChange is
// ignored) and hands their addresses to its balancer, so that a client
// using round_robin spreads calls over the live instances and stops
// sending to one as soon as its record is gone. Pass it to
// grpc.NewClient with grpc.WithResolvers, or resolver.Register it.
func NewResolverBuilder(s kv.Store, opts *WatchOptions) resolver.Builder {
	var o WatchOptions
	if opts != nil {
		o = *opts
	}
	o.OnChange = nil
	return &builder{store: s, opts: o}
}

type builder struct {
	store kv.Store
	opts  WatchOptions
}

func (b *builder) Scheme() string { return Scheme }

func (b *builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := target.Endpoint()
	o := b.opts
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	o.OnChange = func(is []Instance) { update(cc, log, service, is) }
	w, err := NewWatcher(b.store, service, &o)
	if err != nil {
		return nil, fmt.Errorf("discovery: resolver for %q: %w", target.URL.String(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &watchResolver{cancel: cancel}
	r.wg.Go(func() {
		if err := w.Run(ctx); err != nil && ctx.Err() == nil {
			cc.ReportError(fmt.Errorf("discovery: resolver for %q stopped: %w", service, err))
		}
	})
	return r, nil
}

// update hands the instances to gRPC, each one endpoint of one address.
// An empty set is handed over too, rather than reported as an error: on a
// resolver error gRPC's balancers keep the addresses they had, and the
// client would go on sending to instances that are gone. With none, RPCs
// fail (or wait, with WaitForReady) until an instance registers.
func update(cc resolver.ClientConn, log *zap.Logger, service string, is []Instance) {
	st := resolver.State{Endpoints: []resolver.Endpoint{}}
	for _, i := range is {
		a := resolver.Address{Addr: i.Address}
		st.Addresses = append(st.Addresses, a)
		st.Endpoints = append(st.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{a}})
	}
	if err := cc.UpdateState(st); err != nil {
		// gRPC answers an empty set with ErrBadResolverState; nothing
		// to do but wait for the next change.
		log.Debug("discovery: gRPC refused the resolver state", zap.String("service", service), zap.Int("instances", len(is)), zap.Error(err))
	}
}

// watchResolver is the resolver of one ClientConn: a Watcher's goroutine.
type watchResolver struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ResolveNow does nothing: the watcher is always current.
func (r *watchResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close stops the watcher and waits for it.
func (r *watchResolver) Close() {
	r.cancel()
	r.wg.Wait()
}
