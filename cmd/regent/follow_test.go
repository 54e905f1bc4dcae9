package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvurl"
	"github.com/regentkv/regent/kv/memory"
)

// syncBuffer is a buffer a running command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// running is a command started by background.
type running struct {
	out, err *syncBuffer
	cancel   context.CancelFunc
	done     chan int
}

// background starts a command; its output can be read while it runs.
func (c *cli) background(args ...string) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{out: &syncBuffer{}, err: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		r.done <- run(ctx, args, &env{stdin: strings.NewReader(""), stdout: r.out, stderr: r.err,
			getenv: func(k string) string { return c.env[k] }, memory: c.memory})
	}()
	c.t.Cleanup(func() { cancel(); <-r.done; r.done <- 0 })
	return r
}

// waitOut waits until the output holds want.
func (r *running) waitOut(t *testing.T, want string) {
	t.Helper()
	poll.UntilFunc(t, 20*time.Second, func() string { return fmt.Sprintf("output %q (stderr %q) to hold %q", r.out, r.err, want) },
		func() bool { return strings.Contains(r.out.String(), want) })
}

// wait waits for the command to end by itself and returns its status.
func (r *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		r.done <- code
		return code
	case <-time.After(20 * time.Second):
		t.Fatalf("the command did not end; output %q, stderr %q", r.out, r.err)
	}
	return 0
}

// openURL opens the store at url as the CLI's runs do (memory shared).
func (c *cli) openURL(url string) kv.Store {
	c.t.Helper()
	if t, err := kvurl.Parse(url); err == nil && t.Backend == kvurl.Memory && c.memory[t.Name] == nil {
		c.memory[t.Name] = memory.NewBackend()
	}
	s, err := kvurl.Open(context.Background(), url, &kvurl.Options{Memory: c.memory})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestWatch(t *testing.T) {
	for name, url := range storeURLs(t) {
		t.Run(name, func(t *testing.T) {
			c := newCLI(t)
			c.env["REGENT_STORE"] = url
			c.ok("put", "w/k", "0")
			s := c.openURL(url)
			ctx := t.Context()
			// A key: its state first, then each change; --count ends it.
			w := c.background("watch", "w/k", "--count", "3")
			w.waitOut(t, "PUT w/k 0")
			mustPut(t, s, "w/k", "1")
			w.waitOut(t, "PUT w/k 1")
			if err := s.Delete(ctx, "w/k"); err != nil {
				t.Fatal(err)
			}
			if code := w.wait(t); code != 0 {
				t.Fatalf("watch: exit %d, stderr %q", code, w.err)
			}
			if lines := strings.Split(strings.TrimSpace(w.out.String()), "\n"); len(lines) != 3 || lines[2] != "DELETE w/k" {
				t.Fatalf("watch: %q", w.out)
			}
			// A prefix, as JSON lines: the changes from when it started.
			// The stream's start cannot be seen from outside, so puts go
			// on until one shows.
			p := c.background("watch", "--prefix", "w/", "-o", "json")
			poll.Until(t, 20*time.Second, "watch --prefix prints a put", func() bool {
				mustPut(t, s, "w/p", "x")
				return strings.Contains(p.out.String(), `"key":"w/p"`)
			})
			var first change
			if err := json.Unmarshal([]byte(strings.SplitN(p.out.String(), "\n", 2)[0]), &first); err != nil || first.Type != "PUT" || first.Value != "x" {
				t.Fatalf("watch --prefix -o json: %q %v", p.out, err)
			}
		})
	}
}

func mustPut(t *testing.T, s kv.Store, k, v string) {
	t.Helper()
	if err := s.Put(context.Background(), k, []byte(v), nil); err != nil {
		t.Fatal(err)
	}
}

func TestLeaderAndLockHolders(t *testing.T) {
	for name, url := range storeURLs(t) {
		t.Run(name, func(t *testing.T) {
			c := newCLI(t)
			c.env["REGENT_STORE"] = url
			c.fails(exitNotFound, "leader", "jobs/nightly")
			if out := c.ok("lock", "holders", "jobs/nightly"); !strings.Contains(out, "nobody") {
				t.Fatalf("lock holders of a free lock: %q", out)
			}
			s := c.openURL(url)
			el, err := election.New(t.Context(), s, election.Config{Key: "jobs/nightly", Identity: "worker-7",
				Callbacks: election.Callbacks{OnStartedLeading: func(ctx context.Context) { <-ctx.Done() }}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			ran := make(chan error, 1)
			go func() { ran <- el.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-ran; err != nil {
					t.Logf("Run: %v", err)
				}
			}()
			var l leaderJSON
			poll.Until(t, 20*time.Second, "leader shows worker-7", func() bool {
				r := c.run(context.Background(), "", "leader", "jobs/nightly", "-o", "json")
				return r.code == 0 && json.Unmarshal([]byte(r.out), &l) == nil && l.Identity == "worker-7"
			})
			if !l.Leading || l.Token == 0 || l.Since.IsZero() {
				t.Fatalf("leader -o json: %+v", l)
			}
			if out := c.ok("leader", "jobs/nightly"); !strings.Contains(out, "worker-7") || !strings.Contains(out, "TOKEN") {
				t.Fatalf("leader: %q", out)
			}
			if out := c.ok("leader", "watch", "jobs/nightly", "--count", "1"); !strings.Contains(out, "worker-7") {
				t.Fatalf("leader watch: %q", out)
			}
			var hs []holderJSON
			if err := json.Unmarshal([]byte(c.ok("lock", "holders", "jobs/nightly", "-o", "json")), &hs); err != nil || len(hs) != 1 || !hs[0].Holding || hs[0].Token != l.Token {
				t.Fatalf("lock holders -o json: %+v %v (leader token %d)", hs, err, l.Token)
			}
		})
	}
}
