package backend

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
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

func TestCredentialFlags(t *testing.T) {
	dir := t.TempDir()
	pki := testenv.NewPKI(t)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw := write("pw", "s3cret-pw\n")
	empty := write("empty", "\n")
	notPEM := write("not-pem", "hello")
	for _, tc := range []struct {
		name  string
		flags Flags
		say   string
	}{
		{"cert without key", Flags{Backend: Etcd, Endpoints: "https://127.0.0.1:1", TLSCert: pki.ClientCertFile}, "-tls-cert and -tls-key"},
		{"missing CA file", Flags{Backend: Etcd, Endpoints: "https://127.0.0.1:1", TLSCA: filepath.Join(dir, "nope")}, "-tls-ca"},
		{"CA file without a certificate", Flags{Backend: Etcd, Endpoints: "https://127.0.0.1:1", TLSCA: notPEM}, "no PEM certificate"},
		{"a key that is not the cert's", Flags{Backend: Etcd, Endpoints: "https://127.0.0.1:1", TLSCert: pki.ClientCertFile, TLSKey: pki.ServerKey}, "-tls-cert/-tls-key"},
		{"user without a password", Flags{Backend: Etcd, Endpoints: "127.0.0.1:1", User: "app"}, "-password-file"},
		{"empty password file", Flags{Backend: Etcd, Endpoints: "127.0.0.1:1", User: "app", PasswordFile: empty}, "is empty"},
		{"password without user", Flags{Backend: Etcd, Endpoints: "127.0.0.1:1", PasswordFile: pw}, "needs -user"},
		{"user with consul", Flags{Backend: Consul, Endpoints: "127.0.0.1:1", User: "app", PasswordFile: pw}, "-token-file"},
		{"token file with etcd", Flags{Backend: Etcd, Endpoints: "127.0.0.1:1", TokenFile: pw}, "for consul"},
		{"TLS with memory", Flags{Backend: Memory, TLSCA: pki.CAFile}, "no -tls"},
		{"TLS with the embedded etcd", Flags{Backend: Etcd, TLSCA: pki.CAFile}, "embedded etcd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(PasswordEnv, "")
			c, err := tc.flags.Open(context.Background())
			if !errors.Is(err, ErrInvalidFlags) {
				if c != nil {
					_ = c.Close()
				}
				t.Fatalf("Open: got %v, want ErrInvalidFlags", err)
			}
			if !strings.Contains(err.Error(), tc.say) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("message %q: want it to mention %q and never the secret", err, tc.say)
			}
		})
	}
	t.Run("a password in the environment without -user", func(t *testing.T) {
		t.Setenv(PasswordEnv, "env-pw")
		f := Flags{Backend: Etcd, Endpoints: "127.0.0.1:1"}
		if creds, err := f.readCredentials(); err != nil || creds.password != "" {
			t.Errorf("readCredentials: %q, %v; want no password without -user", creds.password, err)
		}
	})
	t.Run("password from the environment", func(t *testing.T) {
		t.Setenv(PasswordEnv, "env-pw")
		f := Flags{Backend: Etcd, Endpoints: "127.0.0.1:1", User: "app"}
		creds, err := f.readCredentials()
		if err != nil || creds.password != "env-pw" {
			t.Errorf("readCredentials: %q, %v; want the password from $%s", creds.password, err, PasswordEnv)
		}
	})
}

// A client certificate rotated on disk is handed out from the next
// handshake on; a pair caught half-written keeps the last good one.
func TestClientCertificateReloads(t *testing.T) {
	pki := testenv.NewPKI(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(pki.ClientCertFile, cert)
	copyFile(pki.ClientKey, key)
	files := &certFiles{cert: cert, key: key}
	first, err := files.get(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Half-written: the new cert is there, its key not yet.
	copyFile(pki.ServerCertFile, cert)
	if got, err := files.get(nil); err != nil || got != first {
		t.Fatalf("half-written pair: %v, %v; want the last good certificate", got, err)
	}
	copyFile(pki.ServerKey, key)
	next, err := files.get(nil)
	if err != nil || next == first || !bytes.Equal(next.Certificate[0], mustPEMCert(t, pki.ServerCertFile)) {
		t.Fatalf("rotated pair: %v; want the new certificate", err)
	}
}

func mustPEMCert(t *testing.T, path string) []byte {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(path, strings.Replace(path, "server.pem", "server-key.pem", 1))
	if err != nil {
		t.Fatal(err)
	}
	return pair.Certificate[0]
}

func TestStoreURLFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := Register(fs)
	if err := fs.Parse([]string{"-store", "zookeeper://app@a:1,b:2/apps/regent?cacert=/ca.pem"}); err != nil {
		t.Fatal(err)
	}
	if f.Backend != ZooKeeper || f.Endpoints != "a:1,b:2" || f.Root != "/apps/regent" || f.User != "app" || f.TLSCA != "/ca.pem" {
		t.Fatalf("-store: %+v", f)
	}
	for _, bad := range []string{"etcd://u:secret@h:1", "consul://token@h:8500", "etcd://h:1?dial-timeout=1s", "redis://h:1"} {
		fs := flag.NewFlagSet("y", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		Register(fs)
		err := fs.Parse([]string{"-store", bad})
		if err == nil {
			t.Errorf("-store %q: %v", bad, err)
		}
	}
}
