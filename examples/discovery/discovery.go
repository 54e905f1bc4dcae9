package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/regentkv/regent/discovery"
	"github.com/regentkv/regent/examples/internal/backend"
)

const (
	service = "echo"
	prefix  = "discovery-demo" // cleared first
	calls   = 9                // per round: three per instance when all are live
)

// summary is what the demo checks at the end; the test reads it too.
type summary struct {
	TTL          time.Duration
	FirstRound   map[string]int // instance -> calls it answered, all three live
	Killed       string
	Gone         time.Duration // from the kill to the client's last call to it
	Unlisted     time.Duration // from the kill to its record's removal
	LastRound    map[string]int
	Deregistered string
}

// instance is one gRPC server process of the demo.
type instance struct {
	id      string
	addr    string
	replica *backend.Replica
	server  *grpc.Server
	reg     *discovery.Registration
}

func run(ctx context.Context, out io.Writer, cluster *backend.Cluster) (summary, error) {
	ttl := max(cluster.MinTTL(), 2*time.Second)
	sum := summary{TTL: ttl}
	start := time.Now()
	say := func(format string, args ...any) {
		_, _ = fmt.Fprintf(out, "%6.2fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	say("%s; records live under %s/%s/, TTL %v", cluster.Describe(), prefix, service, ttl)

	admin, err := cluster.NewReplica(ctx, "client")
	if err != nil {
		return sum, err
	}
	if err := admin.Store.DeleteTree(ctx, prefix); err != nil {
		return sum, fmt.Errorf("clearing %s: %w", prefix, err)
	}

	var insts []*instance
	defer func() {
		for _, in := range insts {
			in.server.Stop()
		}
	}()
	for _, id := range []string{"a", "b", "c"} {
		in, err := startInstance(ctx, cluster, id, ttl)
		if err != nil {
			return sum, err
		}
		insts = append(insts, in)
		say("instance %s serving on %s, registered", id, in.addr)
	}
	byAddr := map[string]string{}
	for _, in := range insts {
		byAddr[in.addr] = in.id
	}

	cc, err := grpc.NewClient(discovery.Scheme+":///"+service,
		grpc.WithResolvers(discovery.NewResolverBuilder(admin.Store, &discovery.WatchOptions{Prefix: prefix})),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin":{}}]}`))
	if err != nil {
		return sum, err
	}
	defer func() { _ = cc.Close() }()
	client := healthpb.NewHealthClient(cc)
	call := func() (string, error) {
		var p peer.Peer
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := client.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true)); err != nil {
			return "", err
		}
		return byAddr[p.Addr.String()], nil
	}
	round := func() (map[string]int, error) {
		got := map[string]int{}
		for range calls {
			id, err := call()
			if err != nil {
				return nil, err
			}
			got[id]++
		}
		return got, nil
	}
	// The resolver learns of the instances one by one: wait for all three.
	for {
		if sum.FirstRound, err = round(); err != nil {
			return sum, err
		}
		if len(sum.FirstRound) == 3 {
			break
		}
		if err := ctx.Err(); err != nil {
			return sum, err
		}
	}
	say("client: %d calls spread as %v", calls, sum.FirstRound)

	watcher, err := discovery.NewWatcher(admin.Store, service, &discovery.WatchOptions{Prefix: prefix})
	if err != nil {
		return sum, err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() { watched <- watcher.Run(wctx) }()
	defer func() {
		stopWatch()
		if err := <-watched; err != nil && !errors.Is(err, context.Canceled) {
			say("watcher: %v", err)
		}
	}()
	if err := watcher.WaitForSync(ctx); err != nil {
		return sum, err
	}

	killed := insts[1]
	sum.Killed = killed.id
	killedAt := time.Now()
	killed.replica.Crash()
	say("instance %s killed: its store connection cut, no Deregister; its gRPC server still answers", killed.id)
	lastCall := killedAt
	unlisted := false
	for {
		id, err := call()
		if err != nil {
			return sum, err
		}
		if id == killed.id {
			lastCall = time.Now()
		}
		if !unlisted && !slices.ContainsFunc(watcher.Instances(), func(i discovery.Instance) bool { return i.ID == killed.id }) {
			unlisted = true
			sum.Unlisted = time.Since(killedAt)
			say("record of %s gone (%v after the kill)", killed.id, sum.Unlisted.Round(10*time.Millisecond))
		}
		if unlisted && time.Since(lastCall) > time.Second {
			break
		}
		if time.Since(killedAt) > 4*ttl+10*time.Second {
			return sum, fmt.Errorf("the client still calls %s %v after the kill (TTL %v)", killed.id, time.Since(killedAt), ttl)
		}
		time.Sleep(20 * time.Millisecond) // pace of the demo's calls
	}
	sum.Gone = lastCall.Sub(killedAt)
	say("client's last call to %s: %v after the kill", killed.id, sum.Gone.Round(10*time.Millisecond))
	if sum.LastRound, err = round(); err != nil {
		return sum, err
	}
	say("client: %d calls spread as %v", calls, sum.LastRound)

	gone := insts[0]
	if err := gone.reg.Deregister(ctx); err != nil {
		return sum, err
	}
	sum.Deregistered = gone.id
	say("instance %s deregistered (a graceful shutdown)", gone.id)
	for {
		got, err := round()
		if err != nil {
			return sum, err
		}
		if len(got) == 1 && got[insts[2].id] == calls {
			say("client: all calls to %s", insts[2].id)
			break
		}
		if err := ctx.Err(); err != nil {
			return sum, err
		}
	}
	if err := sum.check(); err != nil {
		return sum, err
	}
	say("ok: the client moved off the killed instance within the TTL, and off the deregistered one at once")
	return sum, nil
}

// startInstance starts a gRPC server on loopback and registers it, from a
// store client of its own (as its own process would).
func startInstance(ctx context.Context, cluster *backend.Cluster, id string, ttl time.Duration) (*instance, error) {
	r, err := cluster.NewReplica(ctx, "instance-"+id)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(l) }()
	in := &instance{id: id, addr: l.Addr().String(), replica: r, server: s}
	in.reg, err = discovery.Register(ctx, r.Store, service, discovery.Instance{ID: id, Address: in.addr},
		&discovery.RegisterOptions{Prefix: prefix, TTL: ttl})
	if err != nil {
		s.Stop()
		return nil, err
	}
	return in, nil
}

// check is the demo's verdict.
func (s summary) check() error {
	if len(s.FirstRound) != 3 {
		return fmt.Errorf("first round reached %v, want all three instances", s.FirstRound)
	}
	if s.Unlisted > s.TTL+2*time.Second {
		return fmt.Errorf("killed instance unlisted after %v, want within TTL %v (+2s)", s.Unlisted, s.TTL)
	}
	if s.Gone > s.Unlisted+time.Second {
		return fmt.Errorf("client called the killed instance %v after the kill, %v after its record was gone", s.Gone, s.Gone-s.Unlisted)
	}
	if s.LastRound[s.Killed] != 0 {
		return fmt.Errorf("last round still reached the killed instance: %v", s.LastRound)
	}
	return nil
}
