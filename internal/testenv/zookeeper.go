package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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

func (s *ZooKeeperServer) writeConfig() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	data := filepath.Join(s.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
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
`, data, port)
	return os.WriteFile(filepath.Join(s.dir, "zoo.cfg"), []byte(cfg), 0o644)
}

// command runs the server. The packaged start scripts do not work in
// containers; the class path of the Debian jar's manifest pulls in every
// dependency.
func (s *ZooKeeperServer) command() *exec.Cmd {
	return exec.Command("java",
		"-Xms32m", "-Xmx256m", "-XX:+UseSerialGC",
		"-cp", "/etc/zookeeper/conf:"+s.jar,
		"-Dzookeeper.admin.enableServer=false",
		"-Dzookeeper.extendedTypesEnabled=true",
		"-Dznode.container.checkIntervalMs="+strconv.FormatInt(ZooKeeperCheckInterval.Milliseconds(), 10),
		"-Dzookeeper.log.dir="+s.dir,
		"org.apache.zookeeper.server.ZooKeeperServerMain",
		filepath.Join(s.dir, "zoo.cfg"))
}

func (s *ZooKeeperServer) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.proc.Start(ctx)
}

// serving asks the server for its status: an answer means it serves
// clients.
func (s *ZooKeeperServer) serving(context.Context) error {
	if !ruok(s.Addr) {
		return errors.New("no answer to srvr")
	}
	return nil
}

// ruok asks the server for its status: an answer means it serves clients.
func ruok(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(c)
	return bytes.Contains(buf.Bytes(), []byte("Mode: standalone"))
}

func (s *ZooKeeperServer) dumpLog(t testing.TB) {
	t.Logf("testenv: zookeeper output (%s, last 16 KiB):\n%s", s.proc.LogPath(), s.proc.Log())
}
