package kvurl_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvurl"
	"github.com/regentkv/regent/kv/memory"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		backend kvurl.Backend
		servers []string
		root    string
		user    string
		pass    string
	}{
		{"etcd://127.0.0.1:2379", kvurl.Etcd, []string{"127.0.0.1:2379"}, "", "", ""},
		{"etcd://a:1,b:2/apps/regent", kvurl.Etcd, []string{"a:1", "b:2"}, "apps/regent", "", ""},
		{"etcd://root:s%40cret@a:1/", kvurl.Etcd, []string{"a:1"}, "", "root", "s@cret"},
		{"consul://tok@127.0.0.1:8500/r?dc=east", kvurl.Consul, []string{"127.0.0.1:8500"}, "r", "tok", ""},
		{"zookeeper://h:2181,h:2182/regent", kvurl.ZooKeeper, []string{"h:2181", "h:2182"}, "/regent", "", ""},
		{"zk://u:p@h:2181", kvurl.ZooKeeper, []string{"h:2181"}, "", "u", "p"},
		{"memory:", kvurl.Memory, nil, "", "", ""},
		{"MEMORY://shared", kvurl.Memory, nil, "", "", ""},
		{"etcd://[::1]:2379,127.0.0.1:2380/r//", kvurl.Etcd, []string{"[::1]:2379", "127.0.0.1:2380"}, "r", "", ""},
		{"etcd://alice:p/a?s@s@h:1/root", kvurl.Etcd, []string{"h:1"}, "root", "alice", "p/a?s@s"},
	} {
		got, err := kvurl.Parse(tc.raw)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.raw, err)
			continue
		}
		if got.Backend != tc.backend || !slices.Equal(got.Servers, tc.servers) || got.Root != tc.root || got.User != tc.user || got.Password != tc.pass {
			t.Errorf("Parse(%q) = %+v", tc.raw, got)
		}
	}
}

func TestParseRefusesBadURLs(t *testing.T) {
	for raw, want := range map[string]string{
		"":                           "no scheme",
		"127.0.0.1:2379":             "unknown scheme",
		"redis://h:1":                "unknown scheme",
		"etcd:h:1":                   "want etcd://host:port",
		"etcd://":                    "no server",
		"etcd://h":                   "want host:port",
		"etcd://h:0":                 "bad port",
		"etcd://h:1,:2":              "want host:port",
		"etcd://h:1?tls=maybe&x=1":   "unknown parameter \"x\"",
		"zookeeper://h:1?dc=east":    "unknown parameter \"dc\"",
		"memory://a/b":               "no path",
		"etcd://u:hunter2@h:x":       "bad port",
		"consul://tok3n@h:8500?ca=1": "unknown parameter",
		"etcd://h:+2379":             "bad port",
		"etcd://::1:2379":            "want host:port",
		"etcd:/u:hunter2@h:1":        "want etcd://host:port",
		"etcd://u:hunter2%zz@h:1":    "bad %-escape",
		"etcd://u:hun/ter2@h":        "want host:port",
	} {
		_, err := kvurl.Parse(raw)
		if !errors.Is(err, kvurl.ErrInvalidURL) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v, want ErrInvalidURL saying %q", raw, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun/ter2") || strings.Contains(err.Error(), "tok3n")) {
			t.Errorf("Parse(%q): the error shows the secret: %v", raw, err)
		}
	}
}

func TestRedacted(t *testing.T) {
	for raw, want := range map[string]string{
		"etcd://u:p@h:1/r":      "etcd://u:***@h:1/r",
		"etcd://u@h:1":          "etcd://u@h:1",
		"consul://tok@h:1?x=1":  "consul://***@h:1?x=1",
		"zookeeper://h:1/r%40x": "zookeeper://h:1/r%40x",
		"etcd://u:p/q?r@h:1":    "etcd://u:***@h:1",
		"etcd:/u:p@h:1":         "etcd:/u:***@h:1",
		"memory:":               "memory:",
	} {
		if got := kvurl.Redacted(raw); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestOpenBadParameters(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []string{
		"etcd://127.0.0.1:1?dial-timeout=soon",
		"etcd://127.0.0.1:1?tls=false&cacert=/nonexistent",
		"etcd://127.0.0.1:1?tls=maybe",
		"etcd://127.0.0.1:1?cacert=/nonexistent/ca.pem",
		"zookeeper://127.0.0.1:1?cert=/x.pem",
	} {
		if s, err := kvurl.Open(ctx, raw, nil); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) opened", raw)
		}
	}
}

func TestOpenMemorySharesByName(t *testing.T) {
	ctx := context.Background()
	shared := map[string]*memory.Backend{"a": memory.NewBackend()}
	w, err := kvurl.Open(ctx, "memory://a", &kvurl.Options{Memory: shared})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	if err := w.Put(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	r, _ := kvurl.Open(ctx, "memory://a", &kvurl.Options{Memory: shared})
	defer func() { _ = r.Close() }()
	if p, err := r.Get(ctx, "k", nil); err != nil || string(p.Value) != "v" {
		t.Fatalf("a second client of memory://a: %v %v", p, err)
	}
	own, _ := kvurl.Open(ctx, "memory:", nil)
	defer func() { _ = own.Close() }()
	if _, err := own.Get(ctx, "k", nil); !errors.Is(err, kv.ErrKeyNotFound) {
		t.Fatalf("memory: is a store of its own: %v", err)
	}
}
