package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regentkv/regent/internal/testenv"
)

// stores are the URLs the key commands are tried on: memory, and etcd
// (embedded, so without installs).
func storeURLs(t *testing.T) map[string]string {
	ep := strings.TrimPrefix(testenv.Etcd(t)[0], "http://")
	return map[string]string{
		"memory": "memory://keys",
		"etcd":   fmt.Sprintf("etcd://%s/cli-%d", ep, time.Now().UnixNano()),
	}
}

func TestKeyCommands(t *testing.T) {
	for name, url := range storeURLs(t) {
		t.Run(name, func(t *testing.T) {
			c := newCLI(t)
			c.env["REGENT_STORE"] = url
			c.ok("put", "app/a", "1")
			c.ok("put", "app/b/c", "two words")
			c.ok("put", "app/empty", "")
			if r := c.run(context.Background(), "from stdin", "put", "app/in", "-"); r.code != 0 {
				t.Fatalf("put from stdin: %d %s", r.code, r.err)
			}
			if out := c.ok("get", "app/b/c"); !strings.Contains(out, "two words") || !strings.HasPrefix(out, "KEY") {
				t.Fatalf("get: %q", out)
			}
			var p pairJSON
			if err := json.Unmarshal([]byte(c.ok("get", "app/in", "-o", "json")), &p); err != nil || p.Value != "from stdin" || p.LastIndex == 0 {
				t.Fatalf("get -o json: %+v %v", p, err)
			}
			if out := c.ok("ls", "app", "--keys-only"); out != "app/a\napp/b/c\napp/empty\napp/in\n" {
				t.Fatalf("ls --keys-only: %q", out)
			}
			want := "app/\n  a = 1\n  b/\n    c = two words\n  empty = \n  in = from stdin\n"
			if out := c.ok("ls", "app", "--tree"); out != want {
				t.Fatalf("ls --tree:\n%s\nwant:\n%s", out, want)
			}
			var listed []pairJSON
			if err := json.Unmarshal([]byte(c.ok("ls", "app/", "-o", "json")), &listed); err != nil || len(listed) != 4 || listed[2].Key != "app/empty" || listed[2].Value != "" {
				t.Fatalf("ls -o json: %+v %v", listed, err)
			}
			// Compare-and-swap: by value, by index, absent; losers exit 4.
			c.ok("cas", "app/a", "2", "--prev-value", "1")
			c.fails(exitConflict, "cas", "app/a", "3", "--prev-value", "1")
			c.fails(exitConflict, "cas", "app/a", "3", "--prev-index", "1")
			if err := json.Unmarshal([]byte(c.ok("get", "app/a", "-o", "json")), &p); err != nil {
				t.Fatal(err)
			}
			c.ok("cas", "app/a", "3", "--prev-index", fmt.Sprint(p.LastIndex))
			c.fails(exitConflict, "cas", "app/a", "4", "--absent")
			c.ok("cas", "app/new", "x", "--absent")
			c.fails(exitUsage, "cas", "app/a", "5")
			c.fails(exitUsage, "cas", "app/a", "5", "--absent", "--prev-value", "3")
			// Deletes; a missing key exits 3.
			c.ok("del", "app/a")
			c.fails(exitNotFound, "get", "app/a")
			c.fails(exitNotFound, "del", "app/a")
			c.ok("del", "--prefix", "app/b")
			if out := c.ok("ls", "app", "--keys-only"); out != "app/empty\napp/in\napp/new\n" {
				t.Fatalf("ls after deletes: %q", out)
			}
			// A TTL below the backend's minimum is refused as usage.
			c.fails(exitUsage, "put", "app/ttl", "v", "--ttl", "1ns")
		})
	}
}

func TestUsageErrors(t *testing.T) {
	c := newCLI(t)
	if r := c.fails(exitUsage, "get", "k"); !strings.Contains(r.err, "REGENT_STORE") {
		t.Fatalf("no store: %q", r.err)
	}
	c.fails(exitUsage, "--store", "redis://h:1", "get", "k")
	if r := c.fails(exitUsage, "--store", "etcd://root:hunter2@127.0.0.1:x", "get", "k"); strings.Contains(r.err, "hunter2") {
		t.Fatalf("the password shows: %q", r.err)
	}
	c.fails(exitUsage, "--store", "memory:", "get")
	c.fails(exitUsage, "frobnicate")
	c.fails(exitUsage, "--store", "memory:", "lock", "frobnicate")
	// REGENT_<FLAG> fills the global flags only.
	c.env["REGENT_PREFIX"] = "true"
	c.env["REGENT_STORE"] = "memory://env"
	c.ok("put", "a/b", "1")
	c.fails(exitNotFound, "del", "a") // not a tree delete of a/
	delete(c.env, "REGENT_PREFIX")
	delete(c.env, "REGENT_STORE")
	c.fails(exitUsage, "--store", "memory:", "get", "k", "--bogus")
	c.fails(exitUsage, "--store", "memory:", "-o", "yaml", "get", "k")
	c.fails(exitUsage, "--store", "memory:", "get", "../k")
	c.env["REGENT_TIMEOUT"] = "soon"
	c.fails(exitUsage, "--store", "memory:", "get", "k")
	delete(c.env, "REGENT_TIMEOUT")
	// The URL's secret never shows, however malformed the rest.
	for _, u := range []string{"etcd://alice:pa/ss@127.0.0.1:x", "etcd://alice:pa?ss@127.0.0.1:x", "etcd:/alice:secret@127.0.0.1:1"} {
		if r := c.run(context.Background(), "", "diff", u, "memory:"); r.code != exitUsage || strings.Contains(r.err, "pa/ss") || strings.Contains(r.err, "pa?ss") || strings.Contains(r.err, "secret") {
			t.Errorf("diff %s: exit %d, %q", u, r.code, r.err)
		}
	}
	if out := c.ok("help", "exit-codes"); !strings.Contains(out, "7  diff") {
		t.Fatalf("help exit-codes: %q", out)
	}
	if out := c.ok("completion", "bash"); !strings.Contains(out, "bash completion") {
		t.Fatalf("completion bash: %.80q", out)
	}
}

// An etcd that nobody answers on exits 5, within --timeout.
func TestUnreachableExits5(t *testing.T) {
	c := newCLI(t)
	start := time.Now()
	c.fails(exitUnreachable, "--store", "etcd://127.0.0.1:1", "--timeout", "1s", "get", "k")
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %v with --timeout 1s", took)
	}
}
