package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/kv/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cli runs command lines in process, sharing memory stores between them.
type cli struct {
	t      testing.TB
	memory map[string]*memory.Backend
	env    map[string]string
}

func newCLI(t testing.TB) *cli {
	return &cli{t: t, memory: map[string]*memory.Backend{}, env: map[string]string{}}
}

// result is one run's outputs and status.
type result struct {
	out, err string
	code     int
}

func (c *cli) run(ctx context.Context, stdin string, args ...string) result {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return c.env[k] }, memory: c.memory})
	return result{out: out.String(), err: errOut.String(), code: code}
}

// ok runs args and fails the test unless it exits 0; it returns stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(context.Background(), "", args...)
	if r.code != 0 {
		c.t.Fatalf("regent %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.err)
	}
	return r.out
}

// fails runs args and fails the test unless it exits with code.
func (c *cli) fails(code int, args ...string) result {
	c.t.Helper()
	r := c.run(context.Background(), "", args...)
	if r.code != code {
		c.t.Fatalf("regent %s: exit %d (stderr %q), want %d", strings.Join(args, " "), r.code, r.err, code)
	}
	return r
}
