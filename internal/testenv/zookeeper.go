package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// ZooKeeperJarEnv names the variable that points at zookeeper.jar;
// scripts/servers.sh exports it.
const ZooKeeperJarEnv = "REGENT_ZOOKEEPER_JAR"

const defaultZooKeeperJar = "/usr/share/java/zookeeper.jar"

// ZooKeeperCheckInterval is how often the test server's container manager
// reaps expired TTL nodes. The server default is 60 s, which would make
// every TTL test wait a minute; drivers use it as their TTL slack.
const ZooKeeperCheckInterval = 200 * time.Millisecond

// ZooKeeperServer is one standalone ZooKeeper 3.8 started for a test. Its
// port and data directory survive Stop and Start, so a test can take the
// server away and bring the same state back (reconnect tests). It runs as
// a child process that a test can also pause (SIGSTOP) and resume.
type ZooKeeperServer struct {
	// Addr is "127.0.0.1:port", the client address.
	Addr string

	jar  string
	dir  string // config, data and log
	proc *Process
	// id and peers are set for a member of an ensemble: its myid and the
	// "server.N=..." lines of every member. Standalone otherwise.
	id    int
	peers []string
	// SecureAddr, for a server from ZooKeeperTLS, is "127.0.0.1:port" of
	// its TLS client port (Netty; client certificates required).
	SecureAddr string
	tls        *PKI
}

// ZooKeeper starts a ZooKeeper server for t and stops it in t.Cleanup. The
// server listens on loopback only, has TTL nodes enabled and reaps expired
// ones every ZooKeeperCheckInterval. When the jar cannot be found the test
// ends through Missing. On failure, the server's output is logged.
func ZooKeeper(t testing.TB) *ZooKeeperServer {
	t.Helper()
	jar, err := zooKeeperJar()
	if err != nil {
		Missing(t, "ZooKeeper", err.Error())
		return nil
	}
	s := newZooKeeperServer(jar, t.TempDir(), FreePort(t))
	if err := s.writeConfig(); err != nil {
		t.Fatalf("testenv: zookeeper config: %v", err)
	}
	t.Cleanup(func() {
		s.proc.Kill()
		if t.Failed() {
			s.dumpLog(t)
		}
	})
	if err := s.start(); err != nil {
		s.dumpLog(t)
		t.Fatalf("testenv: start zookeeper: %v", err)
	}
	return s
}

// zooKeeperJar finds the server jar and java, or says how to get them.
func zooKeeperJar() (string, error) {
	jar := os.Getenv(ZooKeeperJarEnv)
	if jar == "" {
		jar = defaultZooKeeperJar
	}
	if _, err := os.Stat(jar); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoZooKeeper, err)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return "", fmt.Errorf("%w: java (needed by ZooKeeper): %w", ErrNoZooKeeper, err)
	}
	return jar, nil
}

func newZooKeeperServer(jar, dir string, port int) *ZooKeeperServer {
	s := &ZooKeeperServer{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		jar:  jar,
		dir:  dir,
	}
	s.proc = NewProcess("zookeeper "+s.Addr, filepath.Join(dir, "zookeeper.log"), s.command, s.serving)
	return s
}

// StartZooKeeper is ZooKeeper for a TestMain, which has no testing.TB:
// one server for a whole test package. It returns ErrNoZooKeeper when the
// jar or java is missing; the caller stops the server with Close.
func StartZooKeeper(dir string) (*ZooKeeperServer, error) {
	jar, err := zooKeeperJar()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := newZooKeeperServer(jar, dir, port)
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, s.proc.Log())
	}
	return s, nil
}

// ErrNoZooKeeper: the ZooKeeper jar or java is not installed.
var ErrNoZooKeeper = errors.New("testenv: ZooKeeper not available (run scripts/servers.sh or set " + ZooKeeperJarEnv + ")")

// Close kills the server; for StartZooKeeper's callers.
func (s *ZooKeeperServer) Close() { s.proc.Kill() }

// Log returns the tail of the server's output, for failure messages.
func (s *ZooKeeperServer) Log() string { return s.proc.Log() }

// Servers returns the connect string entries of the server.
func (s *ZooKeeperServer) Servers() []string { return []string{s.Addr} }

// Process is the server's OS process, for tests that pause, resume or
// kill it themselves.
func (s *ZooKeeperServer) Process() *Process { return s.proc }

// Stop kills the server (SIGKILL to its process group, no clean shutdown)
// and waits until it is gone. Clients see a dropped connection; sessions
// survive on disk and are still valid if Start follows within their
// timeout.
func (s *ZooKeeperServer) Stop(t testing.TB) {
	t.Helper()
	s.proc.Kill()
}

// Start brings a stopped server back on the same port and data directory.
func (s *ZooKeeperServer) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		s.dumpLog(t)
		t.Fatalf("testenv: restart zookeeper: %v", err)
	}
}

// Restart brings a stopped (or killed) server back on the same port and
// data directory, and waits until it serves.
func (s *ZooKeeperServer) Restart(ctx context.Context) error { return s.proc.Start(ctx) }

// ZooKeeperTLS is ZooKeeper with a second, TLS client port (SecureAddr)
// on Netty, with the server certificate of pki and client certificates
// signed by its CA required. The plain port stays, for the status checks.
func ZooKeeperTLS(t testing.TB, pki *PKI) *ZooKeeperServer {
	t.Helper()
	jar, err := zooKeeperJar()
	if err != nil {
		Missing(t, "ZooKeeper", err.Error())
		return nil
	}
	s := newZooKeeperServer(jar, t.TempDir(), FreePort(t))
	s.SecureAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	s.tls = pki
	if err := s.writeConfig(); err != nil {
		t.Fatalf("testenv: zookeeper config: %v", err)
	}
	t.Cleanup(func() {
		s.proc.Kill()
		if t.Failed() {
			s.dumpLog(t)
		}
	})
	if err := s.start(); err != nil {
		s.dumpLog(t)
		t.Fatalf("testenv: start zookeeper: %v", err)
	}
	return s
}

func (s *ZooKeeperServer) writeConfig() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	data := filepath.Join(s.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	ensemble := ""
	if s.peers != nil {
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(s.id)+"\n"), 0o644); err != nil {
			return err
		}
		// initLimit and syncLimit are in ticks: a follower that lags by a
		// second is dropped, and a restarted member has 4 s to sync.
		ensemble = "initLimit=20\nsyncLimit=5\nstandaloneEnabled=false\n" + strings.Join(s.peers, "\n") + "\n"
	}
	// A short tick lets tests use session timeouts down to 400 ms; the
	// upper bound stays generous for drivers that ask for more.
	cfg := fmt.Sprintf(`tickTime=200
minSessionTimeout=400
maxSessionTimeout=60000
dataDir=%s
clientPort=%s
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr,stat,mntr
%s`, data, port, ensemble)
	if s.tls != nil {
		_, sport, _ := net.SplitHostPort(s.SecureAddr)
		keyStore, err := s.tls.serverKeyStore(s.dir)
		if err != nil {
			return err
		}
		cfg += fmt.Sprintf(`serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
secureClientPort=%s
secureClientPortAddress=127.0.0.1
ssl.keyStore.location=%s
ssl.keyStore.type=PEM
ssl.trustStore.location=%s
ssl.trustStore.type=PEM
ssl.clientAuth=need
`, sport, keyStore, s.tls.CAFile)
	}
	return os.WriteFile(filepath.Join(s.dir, "zoo.cfg"), []byte(cfg), 0o644)
}

// command runs the server. The packaged start scripts do not work in
// containers; the class path of the Debian jar's manifest pulls in every
// dependency.
func (s *ZooKeeperServer) command() *exec.Cmd {
	cp := "/etc/zookeeper/conf:" + s.jar
	if s.tls != nil {
		// The jar's manifest leaves out netty-codec, which Netty's TLS
		// handler needs (Debian's libnetty-java has it).
		cp += ":" + filepath.Join(filepath.Dir(s.jar), "netty-codec.jar")
	}
	return exec.Command("java",
		"-Xms32m", "-Xmx256m", "-XX:+UseSerialGC",
		"-cp", cp,
		"-Dzookeeper.admin.enableServer=false",
		"-Dzookeeper.extendedTypesEnabled=true",
		"-Dznode.container.checkIntervalMs="+strconv.FormatInt(ZooKeeperCheckInterval.Milliseconds(), 10),
		"-Dzookeeper.log.dir="+s.dir,
		s.mainClass(),
		filepath.Join(s.dir, "zoo.cfg"))
}

func (s *ZooKeeperServer) mainClass() string {
	if s.peers != nil {
		return "org.apache.zookeeper.server.quorum.QuorumPeerMain"
	}
	return "org.apache.zookeeper.server.ZooKeeperServerMain"
}

func (s *ZooKeeperServer) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.proc.Start(ctx)
}

// serving asks the server for its status: a standalone server, or an
// ensemble member that is leader or follower, serves clients.
func (s *ZooKeeperServer) serving(ctx context.Context) error {
	if s.tls != nil {
		// Netty answers no four-letter words here: ask for a session on
		// the secure port instead.
		return s.tlsSession(ctx)
	}
	switch m := zooKeeperMode(s.Addr); m {
	case "standalone", "leader", "follower":
		return nil
	case "":
		return errors.New("no answer to srvr")
	default:
		return fmt.Errorf("mode %q", m)
	}
}

// Mode is what the server says it is ("standalone", "leader",
// "follower"), through the srvr four-letter command; "" when it does not
// answer or serves no clients (an ensemble member without a quorum).
func (s *ZooKeeperServer) Mode() string { return zooKeeperMode(s.Addr) }

// ruok asks the server for its status: an answer means it serves clients.
func ruok(addr string) bool { return zooKeeperMode(addr) != "" }

func zooKeeperMode(addr string) string {
	for line := range strings.Lines(fourLetter(addr, "srvr")) {
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(m)
		}
	}
	return "" // "This ZooKeeper instance is not currently serving requests"
}

// Metric returns the server's figure name from its mntr report (for
// instance zk_watch_count, the watches it holds for its clients), or an
// error when the server does not answer or has no such figure.
func (s *ZooKeeperServer) Metric(name string) (int64, error) {
	out := fourLetter(s.Addr, "mntr")
	for line := range strings.Lines(out) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok && k == name {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("testenv: zookeeper %s: no %s in its mntr report %q", s.Addr, name, out)
}

// fourLetter sends one of ZooKeeper's four-letter commands (those in the
// config's 4lw.commands.whitelist) and returns its answer, "" if none.
func fourLetter(addr, cmd string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return ""
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(c)
	return buf.String()
}

// ZooKeeperEnsemble starts an n-member ensemble (ZooKeeper's quorum peers)
// for t, each member a process of its own on loopback, with the same
// settings as ZooKeeper, and returns once every member serves as leader
// or follower. Members are killed in t.Cleanup, their output logged if
// the test failed. Each can be killed, paused and restarted on its data;
// a client given Servers of all of them fails over between them.
func ZooKeeperEnsemble(t testing.TB, n int) ZooKeeperCluster {
	t.Helper()
	jar, err := zooKeeperJar()
	if err != nil {
		Missing(t, "ZooKeeper", err.Error())
		return nil
	}
	ports, err := freePorts(3 * n)
	if err != nil {
		t.Fatal(err)
	}
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("server.%d=127.0.0.1:%d:%d", i+1, ports[3*i+1], ports[3*i+2]))
	}
	dir := t.TempDir()
	members := make(ZooKeeperCluster, n)
	for i := range members {
		s := newZooKeeperServer(jar, filepath.Join(dir, fmt.Sprintf("zk%d", i+1)), ports[3*i])
		s.id, s.peers = i+1, peers
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := s.writeConfig(); err != nil {
			t.Fatalf("testenv: zookeeper config: %v", err)
		}
		members[i] = s
		t.Cleanup(func() {
			s.proc.Kill()
			if t.Failed() {
				s.dumpLog(t)
			}
		})
	}
	procs := make([]*Process, n)
	for i, s := range members {
		procs[i] = s.proc
	}
	if err := StartTogether(context.Background(), procs); err != nil {
		t.Fatalf("testenv: start zookeeper ensemble: %v", err)
	}
	return members
}

// ZooKeeperCluster is the members of an ensemble.
type ZooKeeperCluster []*ZooKeeperServer

// Servers is the connect string of every member.
func (c ZooKeeperCluster) Servers() []string {
	var out []string
	for _, s := range c {
		out = append(out, s.Addr)
	}
	return out
}

// Leader is the index of the member that says it leads, or -1.
func (c ZooKeeperCluster) Leader() int {
	for i, s := range c {
		if s.proc.Running() && !s.proc.Paused() && s.Mode() == "leader" {
			return i
		}
	}
	return -1
}

func (s *ZooKeeperServer) dumpLog(t testing.TB) {
	t.Logf("testenv: zookeeper output (%s, last 16 KiB):\n%s", s.proc.LogPath(), s.proc.Log())
}

// tlsSession opens a ZooKeeper session on the secure port with the PKI's
// client certificate and closes it.
func (s *ZooKeeperServer) tlsSession(ctx context.Context) error {
	cfg := s.tls.clientTLSConfig()
	dial := func(network, addr string, timeout time.Duration) (net.Conn, error) {
		raw, err := net.DialTimeout(network, addr, timeout)
		if err != nil {
			return nil, err
		}
		c := cfg.Clone()
		c.ServerName = "127.0.0.1"
		conn := tls.Client(raw, c)
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if err := conn.Handshake(); err != nil {
			_ = raw.Close()
			return nil, err
		}
		_ = conn.SetDeadline(time.Time{})
		return conn, nil
	}
	conn, events, err := zk.Connect([]string{s.SecureAddr}, 2*time.Second, zk.WithDialer(dial), zk.WithLogInfo(false))
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.NewTimer(2 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return nil
			}
		case <-deadline.C:
			return errors.New("no session on the TLS port within 2s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
