package zookeeper_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv/zookeeper"
)

// server is the one ZooKeeper every test of the package shares (a JVM
// takes seconds to start); tests that stop their server start their own.
var server *testenv.ZooKeeperServer

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "regent-zk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server, err = testenv.StartZooKeeper(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		if errors.Is(err, testenv.ErrNoZooKeeper) && !testenv.InCI() {
			fmt.Println("skipping kv/zookeeper:", err)
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "kv/zookeeper:", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m,
		// The reaper of the server process, which outlives the tests.
		goleak.IgnoreAnyFunction("github.com/regentkv/regent/internal/testenv.(*ZooKeeperServer).start.func1"),
		goleak.Cleanup(func(code int) {
			if code != 0 {
				fmt.Fprintf(os.Stderr, "zookeeper server output:\n%s\n", server.Log())
			}
			server.Close()
			_ = os.RemoveAll(dir)
		}))
}

// testSessionTimeout is short so that killed clients expire quickly, and
// long enough not to expire live ones on a loaded 2-core CI machine.
const testSessionTimeout = 2 * time.Second

// cutter is a dialer whose connections a test can cut: the client then
// dies without a goodbye, and its session expires on the server.
type cutter struct {
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func (c *cutter) dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, errors.New("cutter: network down")
	}
	conn, err := net.DialTimeout(network, addr, timeout)
	if err == nil {
		c.conns = append(c.conns, conn)
	}
	return conn, err
}

// cut drops every connection and refuses new ones until heal.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = true
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.conns = nil
}

func (c *cutter) heal() {
	c.mu.Lock()
	c.down = false
	c.mu.Unlock()
}

func config(servers []string, root string) zookeeper.Config {
	return zookeeper.Config{Servers: servers, Root: root, SessionTimeout: testSessionTimeout}
}
