package backend

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegisterDefaults(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f := Register(fs)
	if err := fs.Parse([]string{"-backend", "zookeeper", "-endpoints", "a:1, b:2"}); err != nil {
		t.Fatal(err)
	}
	eps, err := f.endpoints()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(eps, "|"); got != "a:1|b:2" {
		t.Errorf("endpoints: got %q, want a:1|b:2", got)
	}
	if f.ZooKeeperSessionTimeout != DefaultZooKeeperSessionTimeout {
		t.Errorf("zk session timeout: got %v, want %v", f.ZooKeeperSessionTimeout, DefaultZooKeeperSessionTimeout)
	}
	fs = flag.NewFlagSet("y", flag.ContinueOnError)
	if f = Register(fs); f.Backend != Etcd || f.Endpoints != "" {
		t.Errorf("defaults: got %+v, want etcd with no endpoints", f)
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags Flags
		say   string // what the message must mention
	}{
		{"unknown backend", Flags{Backend: "redis"}, "etcd, consul, zookeeper or memory"},
		{"consul without endpoints", Flags{Backend: Consul}, "-endpoints"},
		{"zookeeper without endpoints", Flags{Backend: ZooKeeper, Endpoints: " , "}, "-endpoints"},
		{"memory with endpoints", Flags{Backend: Memory, Endpoints: "x:1"}, "no -endpoints"},
		{"negative timeout", Flags{Backend: Etcd, ZooKeeperSessionTimeout: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.flags.Open(context.Background())
			if !errors.Is(err, ErrInvalidFlags) {
				if c != nil {
					_ = c.Close()
				}
				t.Fatalf("Open: got %v, want ErrInvalidFlags", err)
			}
			if !strings.Contains(err.Error(), tc.say) {
				t.Errorf("message %q does not mention %q", err, tc.say)
			}
		})
	}
}

func TestSplitEndpoint(t *testing.T) {
	for _, tc := range []struct{ in, prefix, hostPort, suffix string }{
		{"127.0.0.1:2379", "", "127.0.0.1:2379", ""},
		{"http://127.0.0.1:2379", "http://", "127.0.0.1:2379", ""},
		{"zk1:2181/app", "", "zk1:2181", "/app"},
	} {
		p, h, s := splitEndpoint(tc.in)
		if p != tc.prefix || h != tc.hostPort || s != tc.suffix {
			t.Errorf("splitEndpoint(%q) = %q, %q, %q; want %q, %q, %q", tc.in, p, h, s, tc.prefix, tc.hostPort, tc.suffix)
		}
	}
}

func TestServerControlOnlyEmbedded(t *testing.T) {
	c, err := (&Flags{Backend: Memory}).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if c.Embedded() {
		t.Error("memory cluster says it is embedded")
	}
	if err := c.StopServer(); !errors.Is(err, ErrNotEmbedded) {
		t.Errorf("StopServer: got %v, want ErrNotEmbedded", err)
	}
	if err := c.StartServer(context.Background()); !errors.Is(err, ErrNotEmbedded) {
		t.Errorf("StartServer: got %v, want ErrNotEmbedded", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewReplica(context.Background(), "late"); !errors.Is(err, ErrClosed) {
		t.Errorf("NewReplica after Close: got %v, want ErrClosed", err)
	}
}

// TestCrash checks on every backend available that a crashed replica's
// calls fail while the others work, and that its lock is not released
// gracefully: another replica gets it only once its TTL has run out.
func TestCrash(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags func(t *testing.T) Flags
	}{
		{"memory", func(*testing.T) Flags { return Flags{Backend: Memory} }},
		{"etcd", func(*testing.T) Flags { return Flags{Backend: Etcd} }}, // embedded, through Open
		{"zookeeper", func(t *testing.T) Flags {
			return Flags{Backend: ZooKeeper, Endpoints: testenv.ZooKeeper(t).Addr, ZooKeeperSessionTimeout: time.Second}
		}},
		{"consul", func(t *testing.T) Flags {
			return Flags{Backend: Consul, Endpoints: testenv.Consul(t, testenv.ConsulOptions{}).Addr, ConsulSessionTTLMin: time.Second}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flags := tc.flags(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := flags.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			if !strings.Contains(c.Describe(), tc.name) {
				t.Errorf("Describe() = %q, does not name %s", c.Describe(), tc.name)
			}
			testCrash(ctx, t, c)
		})
	}
}

func testCrash(ctx context.Context, t *testing.T, c *Cluster) {
	a, err := c.NewReplica(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.NewReplica(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store.Put(ctx, "backendtest/k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if p, err := b.Store.Get(ctx, "backendtest/k", nil); err != nil || string(p.Value) != "v" {
		t.Fatalf("b reads a's write: got %v, %v; want v", p, err)
	}
	ttl := c.MinTTL()
	la, err := a.Store.NewLock(ctx, "backendtest/lock", &kv.LockOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := la.Lock(ctx); err != nil {
		t.Fatal(err)
	}

	a.Crash()
	crashed := time.Now()
	a.Crash() // idempotent

	gctx, gcancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = a.Store.Get(gctx, "backendtest/k", nil)
	gcancel()
	if err == nil || errors.Is(err, kv.ErrKeyNotFound) {
		t.Errorf("crashed replica's Get: got %v, want an unreachable error", err)
	}
	if _, err := b.Store.Get(ctx, "backendtest/k", nil); err != nil {
		t.Errorf("healthy replica's Get after the crash: %v", err)
	}
	lb, err := b.Store.NewLock(ctx, "backendtest/lock", &kv.LockOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	// Not released: the lock is still held right after the crash (the Get
	// above took at most a few seconds; the TTL bounds how long it stays).
	if time.Since(crashed) < ttl/2 {
		if _, err := lb.TryLock(ctx); !errors.Is(err, kv.ErrLockHeld) {
			t.Errorf("TryLock right after the crash: got %v, want ErrLockHeld (a crash releases nothing)", err)
		}
	}
	// Released by expiry, within the TTL plus the backend's reaping slack.
	lctx, lcancel := context.WithTimeout(ctx, 3*ttl+10*time.Second)
	defer lcancel()
	if _, err := lb.Lock(lctx); err != nil {
		t.Fatalf("the crashed holder's lock never expired: %v", err)
	}
	if err := lb.Unlock(ctx); err != nil {
		t.Error(err)
	}
}
