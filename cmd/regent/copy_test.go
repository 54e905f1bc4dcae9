package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
)

// treeSize is the number of keys copied between every pair of backends.
const treeSize = 10_000

// backendURLs are the four backends, each as a function of a root.
func backendURLs(t *testing.T) map[string]func(root string) string {
	etcdAddr := strings.TrimPrefix(testenv.Etcd(t)[0], "http://")
	zkAddr := testenv.ZooKeeper(t).Servers()[0]
	consulAddr := testenv.Consul(t, testenv.ConsulOptions{}).Addr
	run := time.Now().UnixNano()
	return map[string]func(string) string{
		"etcd":      func(root string) string { return fmt.Sprintf("etcd://%s/copy-%d/%s", etcdAddr, run, root) },
		"zookeeper": func(root string) string { return fmt.Sprintf("zookeeper://%s/copy-%d/%s", zkAddr, run, root) },
		"consul":    func(root string) string { return fmt.Sprintf("consul://%s/copy-%d/%s", consulAddr, run, root) },
		"memory":    func(root string) string { return "memory://" + root },
	}
}

// seedTree writes the test tree into s: treeSize keys in 100 directories,
// every tenth value empty, one binary value, and a key outside the prefix.
func seedTree(t *testing.T, c *cli, s kv.Store) {
	t.Helper()
	ctx := context.Background()
	for i := range treeSize {
		v := fmt.Sprintf("value-%d", i)
		if i%10 == 0 {
			v = ""
		}
		if err := s.Put(ctx, fmt.Sprintf("tree/d%02d/k%04d", i%100, i), []byte(v), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "tree/binary", []byte{0, 0xff, '\n'}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "outside", []byte("not copied"), nil); err != nil {
		t.Fatal(err)
	}
	for k, o := range map[string]*kv.WriteOptions{
		"tree/ttl/hour":     {TTL: time.Hour},
		"tree/ttl/half":     {TTL: 30 * time.Minute},
		"tree/ttl/keeplive": {TTL: time.Hour, KeepAlive: true},
	} {
		if err := s.Put(ctx, k, []byte("expires"), o); err != nil {
			t.Fatal(err)
		}
	}
}

// seeded is how many keys seedTree writes below "tree".
const seeded = treeSize + 4

// wantTTLs checks that the three expiring keys of the tree expire in s,
// within their TTLs.
func wantTTLs(t *testing.T, s kv.Store) {
	t.Helper()
	ttls, err := s.(kv.TTLReporter).TTLs(context.Background(), "tree")
	if err != nil {
		t.Fatal(err)
	}
	for k, max := range map[string]time.Duration{"tree/ttl/hour": time.Hour, "tree/ttl/half": 30 * time.Minute, "tree/ttl/keeplive": time.Hour} {
		got, ok := ttls[k]
		if !ok || got.TTL <= 0 || got.TTL > max+time.Second {
			t.Errorf("%s: TTL %+v (listed %v), want one of at most %v", k, got, ok, max)
		}
	}
	if len(ttls) != 3 {
		t.Errorf("%d keys expire, want 3: %v", len(ttls), ttls)
	}
}

func TestCopyBetweenEveryPair(t *testing.T) {
	urls := backendURLs(t)
	c := newCLI(t)
	// The tree is written once into memory and copied from there to each
	// backend's "src" root: that is the copy from memory to the others.
	seed := c.openURL(urls["memory"]("seed"))
	seedTree(t, c, seed)
	for name, url := range urls {
		var rep copyReport
		if err := json.Unmarshal([]byte(c.ok("copy", urls["memory"]("seed"), url("src"), "tree", "-o", "json", "--workers", "32")), &rep); err != nil {
			t.Fatal(err)
		}
		if name != "memory" && (rep.Created != seeded || rep.Updated != 0) {
			t.Fatalf("seed copy to %s: %+v", name, rep)
		}
	}
	for from, src := range urls {
		for to, dst := range urls {
			if from == to {
				continue
			}
			t.Run(from+"-to-"+to, func(t *testing.T) {
				s, d := src("src"), dst("from-"+from)
				// A dry run writes nothing.
				var rep copyReport
				if err := json.Unmarshal([]byte(c.ok("copy", s, d, "tree", "--dry-run", "-o", "json")), &rep); err != nil {
					t.Fatal(err)
				}
				if !rep.DryRun || rep.Created != seeded {
					t.Fatalf("dry run: %+v", rep)
				}
				if r := c.fails(exitDiffer, "diff", s, d, "tree"); !strings.Contains(r.err, fmt.Sprintf("%d of %d keys differ", seeded, seeded)) {
					t.Fatalf("diff after a dry run: %q", r.err)
				}
				start := time.Now()
				out := c.ok("copy", s, d, "tree", "--workers", "32")
				t.Logf("%s -> %s: %s (%v)", from, to, strings.TrimSpace(out), time.Since(start).Round(time.Millisecond))
				if !strings.Contains(out, fmt.Sprintf("copied %d keys", seeded)) || !strings.Contains(out, "3 of them with a TTL") {
					t.Fatalf("copy: %q", out)
				}
				wantTTLs(t, c.openURL(d))
				if out := c.ok("diff", s, d, "tree"); out != "" {
					t.Fatalf("diff after the copy: %q", out)
				}
				// Again: nothing to write.
				if out := c.ok("copy", s, d, "tree"); !strings.Contains(out, fmt.Sprintf("copied 0 keys (0 new, 0 changed, 0 bytes), %d already equal", seeded)) {
					t.Fatalf("second copy: %q", out)
				}
				c.fails(exitNotFound, "get", "--store", d, "outside") // outside the prefix
			})
		}
	}
}

// --prune deletes what only the destination has; --follow carries every
// later change, deletes included, until interrupted.
func TestCopyPruneAndFollow(t *testing.T) {
	for name, url := range storeURLs(t) {
		t.Run(name, func(t *testing.T) {
			c := newCLI(t)
			src := "memory://follow-src"
			s, d := c.openURL(src), c.openURL(url)
			mustPut(t, s, "app/a", "1")
			mustPut(t, s, "app/b", "2")
			mustPut(t, d, "app/stale", "old")
			mustPut(t, d, "app/b", "changed")
			if out := c.ok("copy", src, url, "app"); !strings.Contains(out, "copied 2 keys (1 new, 1 changed, 2 bytes), 0 already equal, 0 pruned, 1 only in the destination") {
				t.Fatalf("copy: %q", out)
			}
			if out := c.fails(exitDiffer, "diff", src, url, "app").out; out != "+ app/stale (only-in-destination)\n" {
				t.Fatalf("diff: %q", out)
			}
			if out := c.ok("copy", src, url, "app", "--prune"); !strings.Contains(out, "1 pruned") {
				t.Fatalf("copy --prune: %q", out)
			}
			c.ok("diff", src, url, "app")
			f := c.background("copy", src, url, "app", "--follow")
			f.waitOut(t, "copied 0 keys")
			// The stream's start is not visible from outside: the source
			// changes until the destination shows it, then once more.
			poll.Until(t, 20*time.Second, "a put followed", func() bool {
				mustPut(t, s, "app/c", "3")
				p, err := d.Get(context.Background(), "app/c", nil)
				return err == nil && string(p.Value) == "3"
			})
			mustPut(t, s, "app/a", "1b")
			if err := s.Delete(context.Background(), "app/b"); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 20*time.Second, "the put and the delete followed", func() bool {
				return c.run(context.Background(), "", "diff", src, url, "app").code == 0
			})
			f.cancel()
			if code := f.wait(t); code != 0 {
				t.Fatalf("copy --follow interrupted: exit %d, stderr %q", code, f.err)
			}
		})
	}
}

// A TTL below the destination's minimum is raised to it, never dropped:
// a 3 s key copied to Consul (minimum 2 x session_ttl_min) expires there
// at the minimum.
func TestCopyRaisesTTLsToTheMinimum(t *testing.T) {
	consulAddr := testenv.Consul(t, testenv.ConsulOptions{}).Addr
	c := newCLI(t)
	src, dst := "memory://short", fmt.Sprintf("consul://%s/raise-%d", consulAddr, time.Now().UnixNano())
	s := c.openURL(src)
	if err := s.Put(context.Background(), "k/short", []byte("v"), &kv.WriteOptions{TTL: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var rep copyReport
	if err := json.Unmarshal([]byte(c.ok("copy", src, dst, "k", "-o", "json")), &rep); err != nil || rep.Created != 1 || rep.TTLRaised != 1 {
		t.Fatalf("copy: %+v %v", rep, err)
	}
	ttls, err := c.openURL(dst).(kv.TTLReporter).TTLs(context.Background(), "k")
	if err != nil || ttls["k/short"].TTL < 10*time.Second {
		t.Fatalf("TTL in Consul: %+v %v", ttls, err)
	}
}
