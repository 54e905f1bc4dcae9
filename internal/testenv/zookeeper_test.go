package testenv

import (
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

func TestZooKeeperStopStartKeepsData(t *testing.T) {
	srv := ZooKeeper(t)
	conn, _, err := zk.Connect(srv.Servers(), 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Create("/kept", []byte("v"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	// TTL nodes need extendedTypesEnabled.
	if _, err := conn.CreateTTL("/ttl", nil, zk.FlagTTL, zk.WorldACL(zk.PermAll), time.Hour); err != nil {
		t.Fatalf("CreateTTL: %v", err)
	}
	srv.Stop(t)
	if ruok(srv.Addr) {
		t.Fatal("server still answers after Stop")
	}
	srv.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _, err := conn.Get("/kept")
		if err == nil {
			if string(data) != "v" {
				t.Fatalf("after restart: %q, want v", data)
			}
			break
		}
		if !errors.Is(err, zk.ErrConnectionClosed) && !errors.Is(err, zk.ErrNoServer) {
			t.Fatalf("Get after restart: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer 30s after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling for the reconnect
	}
}

func TestZooKeeperReapsTTLNodes(t *testing.T) {
	srv := ZooKeeper(t)
	conn, _, err := zk.Connect(srv.Servers(), 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.CreateTTL("/short", nil, zk.FlagTTL, zk.WorldACL(zk.PermAll), 500*time.Millisecond); err != nil {
		t.Fatalf("CreateTTL: %v", err)
	}
	start := time.Now()
	for {
		ok, _, err := conn.Exists("/short")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		// TTL + a few check intervals: the reaper runs every 200 ms here,
		// where a default server would take up to a minute.
		if time.Since(start) > 500*time.Millisecond+10*ZooKeeperCheckInterval {
			t.Fatalf("TTL node still there after %v", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond) // polling for the reaper
	}
}
