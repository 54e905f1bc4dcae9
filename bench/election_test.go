package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/consul"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/zookeeper"
)

// electionTTL is the election TTL of the failover benchmarks: the lock's
// lease/session TTL, so failover should take about this long.
const electionTTL = 4 * time.Second

// settle lets a new campaigner's watch reach the server before the
// benchmark releases the lock: etcd parks a brand-new watch until its next
// 100 ms sync, and a handover must be measured from an established waiter,
// as in a running system. Not timed.
const settle = 300 * time.Millisecond

type electionBackend struct {
	name string
	addr string // host:port of the server, for a proxy in front of it
	dial func(ctx context.Context, addr string) (kv.Store, error)
}

// BenchmarkElection measures leader handover (from the leader's Resign to
// the next OnStartedLeading) and failover (from the leader's connection
// being cut, as when its machine dies, to the next OnStartedLeading) on
// every backend; beside them each backend's raw recipe: etcd's
// concurrency.Election (handover and failover), Consul's api.Lock and
// go-zookeeper's zk.Lock (handover: release -> the waiter's Lock
// returns). The figures are the medians reported as ms/handover and
// ms/failover. The loops time themselves and call no b.StopTimer: its
// ReadMemStats stops the world, the in-process etcd server with it, just
// before the timed step.
//
//	go test -run '^$' -bench BenchmarkElection -benchtime 20x
func BenchmarkElection(b *testing.B) {
	ctx := context.Background()
	etcdEndpoint := strings.TrimPrefix(testenv.Etcd(b)[0], "http://")
	zk := testenv.ZooKeeper(b)
	cs := testenv.Consul(b, testenv.ConsulOptions{})
	backends := []electionBackend{
		{name: "etcd", addr: etcdEndpoint, dial: func(ctx context.Context, addr string) (kv.Store, error) {
			return etcd.New(ctx, etcd.Config{Endpoints: []string{addr}, DialTimeout: 2 * time.Second})
		}},
		{name: "zookeeper", addr: zk.Servers()[0], dial: func(ctx context.Context, addr string) (kv.Store, error) {
			return zookeeper.New(ctx, zookeeper.Config{Servers: []string{addr}, SessionTimeout: electionTTL})
		}},
		{name: "consul", addr: cs.Addr, dial: func(ctx context.Context, addr string) (kv.Store, error) {
			return consul.New(ctx, consul.Config{Addresses: []string{addr}, SessionTTLMin: time.Second})
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			b.Run("handover/regent", func(b *testing.B) { benchHandover(b, ctx, be) })
			switch be.name {
			case "etcd":
				b.Run("handover/raw", func(b *testing.B) { benchRawEtcdHandover(b, ctx, be.addr) })
			case "consul":
				b.Run("handover/raw", func(b *testing.B) { benchRawConsulHandover(b, be.addr) })
			case "zookeeper":
				b.Run("handover/raw", func(b *testing.B) { benchRawZooKeeperHandover(b, be.addr) })
			}
			b.Run("failover/regent", func(b *testing.B) { benchFailover(b, ctx, be) })
			if be.name == "etcd" {
				b.Run("failover/raw", func(b *testing.B) { benchRawEtcdFailover(b, ctx, be.addr) })
			}
		})
	}
}

var electionSeq atomic.Int64

func electionKey(b *testing.B) string {
	return fmt.Sprintf("bench/election/%d-%d", time.Now().UnixNano(), electionSeq.Add(1))
}

type leadStart struct {
	id string
	at time.Time
}

type benchCandidate struct {
	id     string
	store  kv.Store
	e      *election.Elector
	cancel context.CancelFunc
	done   chan struct{}
}

func startCandidate(b *testing.B, ctx context.Context, s kv.Store, key, id string, ttl time.Duration, started chan<- leadStart) *benchCandidate {
	e, err := election.New(ctx, s, election.Config{Key: key, Identity: id, TTL: ttl,
		Callbacks: election.Callbacks{OnStartedLeading: func(ctx context.Context) {
			started <- leadStart{id, time.Now()}
			<-ctx.Done()
		}}})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	c := &benchCandidate{id: id, store: s, e: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		_ = e.Run(rctx)
	}()
	return c
}

func (c *benchCandidate) stop() {
	c.cancel()
	<-c.done
	_ = c.store.Close()
}

func waitStart(b *testing.B, started <-chan leadStart, limit time.Duration) leadStart {
	select {
	case s := <-started:
		return s
	case <-time.After(limit):
		b.Fatalf("no leader within %v", limit)
		return leadStart{}
	}
}

func benchHandover(b *testing.B, ctx context.Context, be electionBackend) {
	key := electionKey(b)
	started := make(chan leadStart, 4)
	byID := map[string]*benchCandidate{}
	for _, id := range []string{"a", "b"} {
		s, err := be.dial(ctx, be.addr)
		if err != nil {
			b.Fatal(err)
		}
		c := startCandidate(b, ctx, s, key, id, electionTTL, started)
		defer c.stop()
		byID[id] = c
	}
	leader := waitStart(b, started, time.Minute).id
	var samples []time.Duration
	b.ResetTimer()
	for range b.N {
		time.Sleep(settle)
		t0 := time.Now()
		go func(c *benchCandidate) { _ = c.e.Resign(ctx) }(byID[leader])
		next := waitStart(b, started, time.Minute)
		samples = append(samples, next.at.Sub(t0))
		leader = next.id
	}
	report(b, samples, "handover")
}

func benchFailover(b *testing.B, ctx context.Context, be electionBackend) {
	var samples []time.Duration
	for range b.N {
		b.StopTimer()
		key := electionKey(b)
		started := make(chan leadStart, 4)
		px := testenv.NewProxy(b, be.addr)
		sa, err := be.dial(ctx, px.Addr())
		if err != nil {
			b.Fatal(err)
		}
		a := startCandidate(b, ctx, sa, key, "a", electionTTL, started)
		waitStart(b, started, time.Minute)
		sb, err := be.dial(ctx, be.addr)
		if err != nil {
			b.Fatal(err)
		}
		c := startCandidate(b, ctx, sb, key, "b", electionTTL, started)
		time.Sleep(settle)
		b.StartTimer()
		t0 := time.Now()
		px.Cut() // a's machine is gone: nothing is released
		next := waitStart(b, started, 3*electionTTL+10*time.Second)
		samples = append(samples, next.at.Sub(t0))
		b.StopTimer()
		if next.id != "b" {
			b.Fatalf("leader after failover %q, want b", next.id)
		}
		c.stop()
		a.stop()
		px.Close()
	}
	report(b, samples, "failover")
}

func benchRawEtcdHandover(b *testing.B, ctx context.Context, addr string) {
	key := "/" + electionKey(b)
	var els []*concurrency.Election
	for range 2 {
		cl, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = cl.Close() }()
		sess, err := concurrency.NewSession(cl, concurrency.WithTTL(int(electionTTL/time.Second)))
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = sess.Close() }()
		els = append(els, concurrency.NewElection(sess, key))
	}
	started := make(chan leadStart, 2)
	campaign := func(i int) {
		go func() {
			if err := els[i].Campaign(ctx, fmt.Sprint(i)); err == nil {
				started <- leadStart{fmt.Sprint(i), time.Now()}
			}
		}()
	}
	if err := els[0].Campaign(ctx, "0"); err != nil {
		b.Fatal(err)
	}
	leader := 0
	var samples []time.Duration
	for range b.N {
		campaign(1 - leader)
		time.Sleep(settle)
		t0 := time.Now()
		if err := els[leader].Resign(ctx); err != nil {
			b.Fatal(err)
		}
		next := waitStart(b, started, time.Minute)
		samples = append(samples, next.at.Sub(t0))
		leader = 1 - leader
	}
	report(b, samples, "handover")
}

func benchRawEtcdFailover(b *testing.B, ctx context.Context, addr string) {
	var samples []time.Duration
	for range b.N {
		b.StopTimer()
		key := "/" + electionKey(b)
		px := testenv.NewProxy(b, addr)
		var els []*concurrency.Election
		var closers []func()
		for _, ep := range []string{px.Addr(), addr} {
			cl, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				b.Fatal(err)
			}
			sess, err := concurrency.NewSession(cl, concurrency.WithTTL(int(electionTTL/time.Second)))
			if err != nil {
				b.Fatal(err)
			}
			closers = append(closers, func() { _ = sess.Close(); _ = cl.Close() })
			els = append(els, concurrency.NewElection(sess, key))
		}
		if err := els[0].Campaign(ctx, "a"); err != nil {
			b.Fatal(err)
		}
		started := make(chan leadStart, 1)
		go func() {
			if err := els[1].Campaign(ctx, "b"); err == nil {
				started <- leadStart{"b", time.Now()}
			}
		}()
		time.Sleep(settle)
		b.StartTimer()
		t0 := time.Now()
		px.Cut()
		next := waitStart(b, started, 3*electionTTL+10*time.Second)
		samples = append(samples, next.at.Sub(t0))
		b.StopTimer()
		for _, c := range slices.Backward(closers) {
			c()
		}
		px.Close()
	}
	report(b, samples, "failover")
}

// report replaces ns/op, which would mix in setup, by the median and the
// 90th percentile of the measured durations.
func report(b *testing.B, samples []time.Duration, what string) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(samples[len(samples)/2]), "ms/"+what)
	b.ReportMetric(ms(samples[len(samples)*9/10]), "p90-ms/"+what)
}

// benchRawConsulHandover is Consul's own recipe: two clients, each with an
// api.Lock on one key; the holder's Unlock hands it to the waiter, whose
// blocking query on the key returns.
func benchRawConsulHandover(b *testing.B, addr string) {
	key := electionKey(b)
	var locks []*api.Lock
	for range 2 {
		cl, err := api.NewClient(&api.Config{Address: addr})
		if err != nil {
			b.Fatal(err)
		}
		l, err := cl.LockOpts(&api.LockOptions{Key: key, SessionTTL: electionTTL.String()})
		if err != nil {
			b.Fatal(err)
		}
		locks = append(locks, l)
	}
	started := make(chan leadStart, 2)
	lock := func(i int) {
		go func() {
			if lost, err := locks[i].Lock(nil); err == nil && lost != nil {
				started <- leadStart{fmt.Sprint(i), time.Now()}
			}
		}()
	}
	if _, err := locks[0].Lock(nil); err != nil {
		b.Fatal(err)
	}
	leader := 0
	defer func() { _ = locks[leader].Unlock() }()
	var samples []time.Duration
	for range b.N {
		lock(1 - leader)
		time.Sleep(settle)
		t0 := time.Now()
		if err := locks[leader].Unlock(); err != nil {
			b.Fatal(err)
		}
		next := waitStart(b, started, time.Minute)
		samples = append(samples, next.at.Sub(t0))
		leader = 1 - leader
	}
	report(b, samples, "handover")
}

// benchRawZooKeeperHandover is go-zookeeper's recipe: two sessions, each
// with a zk.Lock on one path (sequential ephemeral znodes, a waiter
// watching its predecessor); the holder's Unlock deletes its znode and the
// waiter's Lock returns.
func benchRawZooKeeperHandover(b *testing.B, addr string) {
	path := "/" + strings.ReplaceAll(electionKey(b), "/", "-")
	var locks []*zk.Lock
	for range 2 {
		conn, _, err := zk.Connect([]string{addr}, electionTTL, zk.WithLogInfo(false))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		locks = append(locks, zk.NewLock(conn, path, zk.WorldACL(zk.PermAll)))
	}
	started := make(chan leadStart, 2)
	lock := func(i int) {
		go func() {
			if err := locks[i].Lock(); err == nil {
				started <- leadStart{fmt.Sprint(i), time.Now()}
			}
		}()
	}
	if err := locks[0].Lock(); err != nil {
		b.Fatal(err)
	}
	leader := 0
	defer func() { _ = locks[leader].Unlock() }()
	var samples []time.Duration
	for range b.N {
		lock(1 - leader)
		time.Sleep(settle)
		t0 := time.Now()
		if err := locks[leader].Unlock(); err != nil {
			b.Fatal(err)
		}
		next := waitStart(b, started, time.Minute)
		samples = append(samples, next.at.Sub(t0))
		leader = 1 - leader
	}
	report(b, samples, "handover")
}
