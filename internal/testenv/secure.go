package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/kv/etcd/embedded"
)

// The secured servers below run as production does: TLS with client
// certificates required, authentication on, and an application identity
// granted one Store root (AppRoot) and nothing else, the grant
// docs/security.md tells an operator to create. The tests run the suites
// with the application identity and check that everything outside the
// grant is refused, typed.

// AppRoot is the Store root the application identity of every secured
// server is granted ("app": etcd keys under "/app/", Consul keys under
// "app/" and regent's "__regent/app/", the ZooKeeper subtree "/app").
const AppRoot = "app"

// SecureEtcd is an embedded etcd with client TLS, client certificates
// required and RBAC on: a root user, and an application user whose role
// grants read-write on "/app/" only.
type SecureEtcd struct {
	*embedded.Server
	PKI *PKI
	// AppUser and AppPassword are the application user's credentials.
	AppUser, AppPassword string
	// Root is a client with the root user, for what the tests do as an
	// operator (compaction, checking what was written). Closed by
	// t.Cleanup.
	Root *clientv3.Client
}

// SecureEtcdServer starts a SecureEtcd for t, stopped by t.Cleanup.
func SecureEtcdServer(t testing.TB) *SecureEtcd {
	t.Helper()
	pki := NewPKI(t)
	// The minimum bcrypt cost: the suites open many authenticated clients
	// at once, and each authentication hashes the password (under -race,
	// default-cost hashes made them time out).
	srv := EtcdServer(t, embedded.WithBcryptCost(4), embedded.WithClientTLS(embedded.ClientTLS{
		CertFile: pki.ServerCertFile, KeyFile: pki.ServerKey, TrustedCAFile: pki.CAFile, ClientCertAuth: true}))
	s := &SecureEtcd{Server: srv, PKI: pki, AppUser: "app", AppPassword: "app-secret-pw"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), TLS: pki.clientTLSConfig(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("testenv: etcd admin client: %v", err)
	}
	defer func() { _ = admin.Close() }()
	prefix := "/" + AppRoot + "/"
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-secret-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "app"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "app", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, s.AppUser, s.AppPassword); return err },
		func() error { _, err := admin.UserGrantRole(ctx, s.AppUser, "app"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("testenv: setting up etcd RBAC: %v", err)
		}
	}
	s.Root, err = clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), TLS: pki.clientTLSConfig(),
		Username: "root", Password: "root-secret-pw", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("testenv: etcd root client: %v", err)
	}
	t.Cleanup(func() { _ = s.Root.Close() })
	return s
}

// SecureConsul is a one-server Consul cluster with data on disk (so that
// Kill and Restart keep the ACLs), HTTPS with client certificates
// required, and ACLs in default-deny mode: a management token, and an
// application token whose policy is AppPolicy.
type SecureConsul struct {
	*ConsulServer
	PKI *PKI
	// ManagementToken can do anything; AppToken only what AppPolicy allows.
	ManagementToken, AppToken string
}

// AppPolicy is the Consul ACL policy of the application token: the keys
// under the Store's root, regent's internal keys for that root, and the
// sessions locks and KeepAlive keys need. docs/security.md quotes it.
const AppPolicy = `key_prefix "app/" { policy = "write" }
key_prefix "__regent/app/" { policy = "write" }
session_prefix "" { policy = "write" }
`

// SecureConsulServer starts a SecureConsul for t, stopped by t.Cleanup.
func SecureConsulServer(t testing.TB) *SecureConsul {
	t.Helper()
	pki := NewPKI(t)
	s := &SecureConsul{PKI: pki, ManagementToken: "7b1a0d2e-0000-4000-8000-00000000aa01",
		AppToken: "7b1a0d2e-0000-4000-8000-00000000aa02"}
	s.ConsulServer = Consul(t, ConsulOptions{ACLToken: s.ManagementToken, TLS: pki, Persistent: true})
	admin, err := api.NewClient(&api.Config{Address: s.Addr, Token: s.ManagementToken})
	if err != nil {
		t.Fatal(err)
	}
	// Right after the leader election the ACL system may still be
	// bootstrapping its management token: retry until it answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = grantApp(admin, s.AppToken)
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: creating the Consul application token: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // polling the server until its ACL system answers
	}
}

func grantApp(admin *api.Client, secret string) error {
	policy, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: "regent-app", Rules: AppPolicy}, nil)
	if err != nil && strings.Contains(err.Error(), "already exists") {
		policy, _, err = admin.ACL().PolicyReadByName("regent-app", nil)
	}
	if err != nil {
		return err
	}
	_, _, err = admin.ACL().TokenCreate(&api.ACLToken{SecretID: secret, Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	return err
}

// SecureZooKeeper is a ZooKeeper with its TLS client port (SecureAddr;
// client certificates required) and digest ACLs: the root znode is
// read-only to the world, and the application identity (AppAuth) owns the
// subtree "/app", which nobody else can read or write.
type SecureZooKeeper struct {
	*ZooKeeperServer
	PKI *PKI
	// AppAuth is the application identity, "user:password", for
	// zookeeper.Config.Auth.
	AppAuth string
}

// SecureZooKeeperServer starts a SecureZooKeeper for t, stopped by
// t.Cleanup.
func SecureZooKeeperServer(t testing.TB) *SecureZooKeeper {
	t.Helper()
	pki := NewPKI(t)
	s := &SecureZooKeeper{ZooKeeperServer: ZooKeeperTLS(t, pki), PKI: pki, AppAuth: "app:app-secret-pw"}
	conn, _, err := zk.Connect([]string{s.Addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	user, pass, _ := strings.Cut(s.AppAuth, ":")
	admin := ZooKeeperAdminAuth
	adminUser, adminPass, _ := strings.Cut(admin, ":")
	if err := conn.AddAuth("digest", []byte(admin)); err != nil {
		t.Fatal(err)
	}
	appACL := append(zk.DigestACL(zk.PermAll, user, pass), zk.DigestACL(zk.PermAll, adminUser, adminPass)...)
	if _, err := conn.Create("/"+AppRoot, nil, 0, appACL); err != nil {
		t.Fatalf("testenv: creating the application's subtree: %v", err)
	}
	rootACL := append(zk.WorldACL(zk.PermRead), zk.DigestACL(zk.PermAll, adminUser, adminPass)...)
	if _, err := conn.SetACL("/", rootACL, -1); err != nil {
		t.Fatalf("testenv: locking the root znode: %v", err)
	}
	return s
}

// ZooKeeperAdminAuth is the operator's digest identity on a
// SecureZooKeeper: it may do anything to the root znode and "/app" (not
// to the znodes the application creates, which carry the application's
// ACL only).
const ZooKeeperAdminAuth = "admin:admin-secret-pw"

// SecureAddrs is the TLS client port, as zookeeper.Config.Servers wants it.
func (s *SecureZooKeeper) SecureAddrs() []string { return []string{s.SecureAddr} }
