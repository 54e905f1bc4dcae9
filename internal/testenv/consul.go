package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ConsulVersion is the only Consul release the tests use: the last
// open-source line (1.17 and later are not), built by scripts/servers.sh.
const ConsulVersion = "v1.14.0"

// ConsulHowToGet says how to get the Consul binary; it is the message of a
// skip (or, in CI, a failure) when the binary is missing.
const ConsulHowToGet = "run scripts/servers.sh, which builds Consul " + ConsulVersion +
	" from the Go module proxy, or set REGENT_CONSUL to a consul " + ConsulVersion + " binary"

// ErrConsulMissing is returned by ConsulBinary and StartConsul when no
// Consul binary can be found.
var ErrConsulMissing = errors.New("testenv: consul binary not found")

// ConsulOptions tune the agent StartConsul runs. The zero value is a plain
// -dev agent with session_ttl_min = "1s".
type ConsulOptions struct {
	// ACLToken, when set, enables ACLs with default policy deny and makes
	// this the initial management (bootstrap) token.
	ACLToken string
	// HCL is appended to the agent's configuration.
	HCL []string
	// Persistent runs a one-server cluster with a data directory instead
	// of a -dev agent (which keeps everything in memory), so that Kill and
	// Restart bring the same data back. Raft runs at its fastest timing
	// (raft_multiplier 1); a start or restart still takes a leader
	// election, a second or two.
	Persistent bool
	// TLS, when set, adds an HTTPS API port (ConsulServer.HTTPSAddr) with
	// the PKI's server certificate, client certificates required (the
	// plain HTTP port stays, for the readiness checks).
	TLS *PKI
}

// ConsulServer is one running Consul agent, in a child process.
type ConsulServer struct {
	// Addr is the HTTP API address, "127.0.0.1:port".
	Addr string
	// ServerAddr is the server RPC (raft) address, as /v1/status/leader
	// names the leader.
	ServerAddr string
	// HTTPSAddr is "https://127.0.0.1:port" for an agent started with
	// ConsulOptions.TLS, else "".
	HTTPSAddr string
	// LogPath is the file holding the agent's stdout and stderr.
	LogPath string

	proc     *Process
	token    string
	stopOnce sync.Once
	tmpDir   string
}

// ConsulBinary finds the consul binary: $REGENT_CONSUL, then
// consul-v1.14.0 in the regent cache ($REGENT_CACHE, else
// $XDG_CACHE_HOME/regent, else ~/.cache/regent), then consul on PATH.
func ConsulBinary() (string, error) {
	if p := os.Getenv("REGENT_CONSUL"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%w: REGENT_CONSUL=%q is not an executable file", ErrConsulMissing, p)
	}
	if p := filepath.Join(cacheDir(), "bin", "consul-"+ConsulVersion); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p, nil
	}
	return "", ErrConsulMissing
}

func cacheDir() string {
	if d := os.Getenv("REGENT_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "regent")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "regent-cache")
	}
	return filepath.Join(home, ".cache", "regent")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Consul starts an agent for the calling test and stops it in t.Cleanup,
// printing the agent's log when the test failed. A missing binary is
// Missing (a skip, or a failure in CI).
func Consul(t testing.TB, opts ConsulOptions) *ConsulServer {
	t.Helper()
	srv, err := StartConsul(opts)
	if errors.Is(err, ErrConsulMissing) {
		Missing(t, "consul "+ConsulVersion, ConsulHowToGet)
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("consul agent log (%s):\n%s", srv.LogPath, srv.Log())
		}
		srv.Stop()
	})
	return srv
}

// StartConsul runs a Consul agent on free loopback ports and returns once
// it has a leader and serves KV reads. The caller must Stop it; use it
// from TestMain to share one agent across a package's tests. Ports picked
// free may be taken by someone else before the agent binds them, so a
// failed start is retried a few times on new ports.
func StartConsul(opts ConsulOptions) (*ConsulServer, error) {
	bin, err := ConsulBinary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		srv, err := startConsulOnce(bin, opts)
		if err == nil {
			return srv, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startConsulOnce(bin string, opts ConsulOptions) (*ConsulServer, error) {
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	srv, err := newConsulServer(bin, opts, consulPorts(ports), "regent-test", nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.proc.Start(ctx); err != nil {
		log := srv.Log()
		srv.Stop()
		return nil, fmt.Errorf("testenv: consul did not become ready: %w\n%s", err, log)
	}
	return srv, nil
}

// consulPorts are an agent's ports: http, serf LAN, serf WAN, server RPC
// (raft), gRPC.
type consulPorts []int

// newConsulServer describes an agent (Start runs it). join is nil for a
// -dev agent or a one-server cluster (opts.Persistent), else the serf LAN
// addresses of the other servers of a cluster of len(join)+1.
func newConsulServer(bin string, opts ConsulOptions, ports consulPorts, node string, join []string) (*ConsulServer, error) {
	dir, err := os.MkdirTemp("", "regent-consul-")
	if err != nil {
		return nil, err
	}
	// A test run opens many clients from one address, each with its own
	// keep-alive pool and blocking queries; the default limit of 200
	// connections per client address is for production.
	hcl := []string{`session_ttl_min = "1s"`, `limits { http_max_conns_per_client = 4096 }`}
	if opts.ACLToken != "" {
		hcl = append(hcl, fmt.Sprintf(`acl { enabled = true
  default_policy = "deny"
  enable_token_persistence = false
  tokens { initial_management = %q } }`, opts.ACLToken))
	}
	if opts.Persistent || join != nil {
		hcl = append(hcl, `performance { raft_multiplier = 1 }`)
	}
	if opts.TLS != nil && len(ports) > 5 {
		hcl = append(hcl, fmt.Sprintf(`ports { https = %d }
tls { defaults {
  ca_file = %q
  cert_file = %q
  key_file = %q
  verify_incoming = true
} }`, ports[5], opts.TLS.CAFile, opts.TLS.ServerCertFile, opts.TLS.ServerKey))
	}
	hcl = append(hcl, opts.HCL...)
	cfgPath := filepath.Join(dir, "regent.hcl")
	if err := os.WriteFile(cfgPath, []byte(strings.Join(hcl, "\n")+"\n"), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// Every port is given: in 1.14 -dev also binds the fixed gRPC-TLS port
	// 8503 and DNS 8600 unless told otherwise, which collides with the
	// other agents of a parallel test run.
	args := []string{"agent",
		"-node", node,
		"-bind", "127.0.0.1",
		"-client", "127.0.0.1",
		"-http-port", strconv.Itoa(ports[0]),
		"-serf-lan-port", strconv.Itoa(ports[1]),
		"-serf-wan-port", strconv.Itoa(ports[2]),
		"-server-port", strconv.Itoa(ports[3]),
		"-grpc-port", strconv.Itoa(ports[4]),
		"-grpc-tls-port", "-1",
		"-dns-port", "-1",
		"-log-level", "warn",
		"-config-file", cfgPath,
	}
	switch {
	case join != nil:
		args = append(args, "-server", "-bootstrap-expect", strconv.Itoa(len(join)+1), "-data-dir", filepath.Join(dir, "data"))
		for _, j := range join {
			args = append(args, "-retry-join", j, "-retry-interval", "200ms")
		}
	case opts.Persistent:
		args = append(args, "-server", "-bootstrap-expect", "1", "-data-dir", filepath.Join(dir, "data"))
	default:
		args = append(args, "-dev")
	}
	srv := &ConsulServer{
		Addr:       "127.0.0.1:" + strconv.Itoa(ports[0]),
		ServerAddr: "127.0.0.1:" + strconv.Itoa(ports[3]),
		LogPath:    filepath.Join(dir, "consul.log"),
		token:      opts.ACLToken,
		tmpDir:     dir,
	}
	if opts.TLS != nil && len(ports) > 5 {
		srv.HTTPSAddr = "https://127.0.0.1:" + strconv.Itoa(ports[5])
	}
	srv.proc = NewProcess("consul "+node+" "+srv.Addr, srv.LogPath, func() *exec.Cmd { return exec.Command(bin, args...) }, srv.ready)
	return srv, nil
}

// ConsulCluster starts n Consul servers that form one cluster
// (-bootstrap-expect n, joined over serf on loopback), each a process that
// can be killed, paused and restarted on its data, and returns once every
// one knows the leader and serves KV reads. They are stopped in
// t.Cleanup. Every server is also an agent with its own HTTP API: a client
// given all the Addrs fails over between them.
func ConsulCluster(t testing.TB, n int, opts ConsulOptions) ConsulServers {
	t.Helper()
	bin, err := ConsulBinary()
	if errors.Is(err, ErrConsulMissing) {
		Missing(t, "consul "+ConsulVersion, ConsulHowToGet)
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ports, err := freePorts(5 * n)
	if err != nil {
		t.Fatal(err)
	}
	servers := make(ConsulServers, n)
	for i := range servers {
		var join []string
		for j := range n {
			if j != i {
				join = append(join, "127.0.0.1:"+strconv.Itoa(ports[5*j+1]))
			}
		}
		srv, err := newConsulServer(bin, opts, consulPorts(ports[5*i:5*i+5]), fmt.Sprintf("regent-test-%d", i), join)
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = srv
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("consul %s log (%s):\n%s", srv.Addr, srv.LogPath, srv.Log())
			}
			srv.Stop()
		})
	}
	procs := make([]*Process, n)
	for i, srv := range servers {
		procs[i] = srv.proc
	}
	if err := StartTogether(context.Background(), procs); err != nil {
		t.Fatalf("testenv: start consul cluster: %v", err)
	}
	return servers
}

// ConsulServers are the servers of a cluster.
type ConsulServers []*ConsulServer

// Addrs are the HTTP API addresses of every server.
func (c ConsulServers) Addrs() []string {
	var out []string
	for _, s := range c {
		out = append(out, s.Addr)
	}
	return out
}

// Leader is the index of the raft leader as a running, unpaused server
// reports it, or -1 when none knows one.
func (c ConsulServers) Leader(ctx context.Context) int {
	b, err := c.ask(ctx, "/v1/status/leader")
	if err != nil {
		return -1
	}
	leader := strings.Trim(strings.TrimSpace(string(b)), `"`)
	for i, m := range c {
		if m.ServerAddr == leader {
			return i
		}
	}
	return -1
}

// ask GETs path from the first running, unpaused server that answers.
func (c ConsulServers) ask(ctx context.Context, path string) ([]byte, error) {
	client := &http.Client{Timeout: time.Second}
	last := errors.New("no server running")
	for _, s := range c {
		if !s.proc.Running() || s.proc.Paused() {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+path, nil)
		if err != nil {
			return nil, err
		}
		if s.token != "" {
			req.Header.Set("X-Consul-Token", s.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return b, err
	}
	return nil, last
}

// ready checks that the agent has a leader and answers a KV read.
func (s *ConsulServer) ready(ctx context.Context) error {
	return s.probe(ctx, &http.Client{Timeout: 2 * time.Second}, s.token)
}

func (s *ConsulServer) probe(ctx context.Context, client *http.Client, token string) error {
	get := func(path string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+path, nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("X-Consul-Token", token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	code, body, err := get("/v1/status/leader")
	if err != nil {
		return err
	}
	if code != http.StatusOK || strings.Trim(strings.TrimSpace(body), `"`) == "" {
		return fmt.Errorf("no leader yet (%d %q)", code, body)
	}
	code, body, err = get("/v1/kv/regent-testenv-probe")
	if err != nil {
		return err
	}
	if code != http.StatusOK && code != http.StatusNotFound {
		return fmt.Errorf("kv not ready (%d %q)", code, body)
	}
	return nil
}

// Log returns what the agent has written so far (its last 16 KiB).
func (s *ConsulServer) Log() string { return s.proc.Log() }

// Process is the agent's OS process, for tests that pause, resume or kill
// it themselves.
func (s *ConsulServer) Process() *Process { return s.proc }

// Restart brings a killed agent back, on the same ports and (Persistent)
// the same data, and waits until it serves again.
func (s *ConsulServer) Restart(ctx context.Context) error { return s.proc.Start(ctx) }

// Stop kills the agent's process group and waits for it to exit. It is
// idempotent. The data and log files go with it.
func (s *ConsulServer) Stop() {
	s.stopOnce.Do(func() {
		s.proc.Kill()
		_ = os.RemoveAll(s.tmpDir)
	})
}

// freePorts returns n distinct ports that were free a moment ago. The
// listeners are held until all are chosen so that the same port is not
// handed out twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testenv: no free port: %w", err)
		}
		closers = append(closers, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Healthy reports whether autopilot, asked through a running, unpaused
// server, finds every server healthy and the cluster able to lose one
// (a server back from a restart counts once it has caught up).
func (c ConsulServers) Healthy(ctx context.Context) bool {
	b, err := c.ask(ctx, "/v1/operator/autopilot/health")
	if err != nil {
		return false
	}
	var h struct {
		Healthy          bool
		FailureTolerance int
	}
	return json.Unmarshal(b, &h) == nil && h.Healthy && h.FailureTolerance >= 1
}
