package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// EtcdMember is one etcd server running in a child process (the test
// binary re-executed, see Child), on its own loopback ports and data
// directory, which survive Kill and Start: a test can SIGKILL it, pause it
// and bring the same member back.
type EtcdMember struct {
	*Process
	// Name is the member's name in the cluster.
	Name string
	// ClientURL and PeerURL are the member's URLs, "http://127.0.0.1:port".
	ClientURL, PeerURL string
	// DataDir holds the member's data.
	DataDir string
}

// EtcdProcess starts a single-member etcd in a child process for the test,
// killed in t.Cleanup (its output is logged if the test failed). The test
// package's TestMain must call Child.
func EtcdProcess(t testing.TB) *EtcdMember {
	t.Helper()
	return EtcdCluster(t, 1)[0]
}

// EtcdCluster starts an n-member etcd cluster, each member a child process,
// and returns once every member is healthy. Members are killed in
// t.Cleanup. The test package's TestMain must call Child.
func EtcdCluster(t testing.TB, n int) []*EtcdMember {
	t.Helper()
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	members := make([]*EtcdMember, n)
	var initial []string
	for i := range members {
		m := &EtcdMember{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: "http://127.0.0.1:" + strconv.Itoa(ports[2*i]),
			PeerURL:   "http://127.0.0.1:" + strconv.Itoa(ports[2*i+1]),
			DataDir:   filepath.Join(dir, fmt.Sprintf("m%d", i)),
		}
		members[i] = m
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range members {
		args := etcdChildArgs{Name: m.Name, DataDir: m.DataDir, ClientURL: m.ClientURL, PeerURL: m.PeerURL,
			InitialCluster: strings.Join(initial, ","), NoFsync: true}
		m.Process = NewProcess("etcd "+m.Name, filepath.Join(dir, m.Name+".log"), func() *exec.Cmd {
			cmd, err := ChildCommand("etcd", args)
			if err != nil {
				panic(err) // os.Executable failed: nothing can run
			}
			return cmd
		}, m.healthy)
		t.Cleanup(func() {
			m.Kill()
			if t.Failed() {
				t.Logf("testenv: etcd %s output (%s):\n%s", m.Name, m.LogPath(), m.Log())
			}
		})
	}
	procs := make([]*Process, n)
	for i, m := range members {
		procs[i] = m.Process
	}
	if err := StartTogether(context.Background(), procs); err != nil {
		t.Fatalf("testenv: start etcd cluster: %v", err)
	}
	return members
}

// Endpoints returns the member's client URL, for clientv3.Config.
func (m *EtcdMember) Endpoints() []string { return []string{m.ClientURL} }

// healthy asks the member's /health endpoint: true once it has a leader
// and serves.
func (m *EtcdMember) healthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"health":"true"`) {
		return fmt.Errorf("not healthy: %d %s", resp.StatusCode, b)
	}
	return nil
}

// etcdChildArgs configure the "etcd" child role.
type etcdChildArgs struct {
	Name, DataDir, ClientURL, PeerURL, InitialCluster string
	NoFsync                                           bool
}

// runEtcdChild is the "etcd" child role: an embedded etcd server that runs
// until SIGTERM (a clean shutdown) or SIGKILL.
func runEtcdChild(raw json.RawMessage) int {
	var a etcdChildArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		fmt.Fprintf(os.Stderr, "etcd child: bad args: %v\n", err)
		return 2
	}
	cfg := embed.NewConfig()
	cfg.Name = a.Name
	cfg.Dir = a.DataDir
	logger, err := zap.NewProduction(zap.IncreaseLevel(zap.WarnLevel))
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd child: logger: %v\n", err)
		return 2
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger)
	curl, err := url.Parse(a.ClientURL)
	if err != nil {
		return 2
	}
	purl, err := url.Parse(a.PeerURL)
	if err != nil {
		return 2
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*curl}, []url.URL{*curl}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*purl}, []url.URL{*purl}
	cfg.InitialCluster = a.InitialCluster
	cfg.ListenMetricsUrls = nil
	cfg.UnsafeNoFsync = a.NoFsync // a killed process loses nothing the OS has
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd child: start: %v\n", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		e.Close()
		return 0
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "etcd child: %v\n", err)
		e.Close()
		return 1
	}
}

// EtcdLeader is the index of the member the running, unpaused members
// report as their leader, or -1 when none knows one.
func EtcdLeader(ctx context.Context, members []*EtcdMember) int {
	var eps []string
	for _, m := range members {
		if m.Running() && !m.Paused() {
			eps = append(eps, m.ClientURL)
		}
	}
	if len(eps) == 0 {
		return -1
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return -1
	}
	defer func() { _ = c.Close() }()
	for _, ep := range eps {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.Status(sctx, ep)
		cancel()
		if err != nil || st.Leader == 0 {
			continue
		}
		ml, err := c.MemberList(ctx)
		if err != nil {
			return -1
		}
		for _, mem := range ml.Members {
			if mem.ID != st.Leader {
				continue
			}
			for i, m := range members {
				if mem.Name == m.Name {
					return i
				}
			}
		}
	}
	return -1
}
