package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/examples/internal/backend"
	"github.com/regentkv/regent/examples/internal/backendtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDiscovery(t *testing.T) {
	backendtest.Each(t, time.Minute, func(t *testing.T, ctx context.Context, cluster *backend.Cluster) {
		var out bytes.Buffer
		sum, err := run(ctx, &out, cluster)
		t.Logf("output:\n%s", out.String())
		if err != nil {
			t.Fatal(err)
		}
		if sum.Unlisted > sum.TTL+2*time.Second || sum.LastRound[sum.Killed] != 0 {
			t.Errorf("killed instance unlisted after %v (TTL %v), last round %v", sum.Unlisted, sum.TTL, sum.LastRound)
		}
		if !strings.Contains(out.String(), "ok: the client moved off") {
			t.Error("output lacks the final ok line")
		}
	})
}

func TestCheckCatchesAStaleClient(t *testing.T) {
	good := summary{TTL: 2 * time.Second, FirstRound: map[string]int{"a": 3, "b": 3, "c": 3}, Killed: "b",
		Unlisted: 2 * time.Second, Gone: 2 * time.Second, LastRound: map[string]int{"a": 5, "c": 4}}
	if err := good.check(); err != nil {
		t.Fatalf("good summary: %v", err)
	}
	for name, mutate := range map[string]func(*summary){
		"one instance missing":  func(s *summary) { s.FirstRound = map[string]int{"a": 9} },
		"record outlived TTL":   func(s *summary) { s.Unlisted = 5 * time.Second },
		"client kept calling":   func(s *summary) { s.Gone = 4 * time.Second },
		"last round reached it": func(s *summary) { s.LastRound = map[string]int{"b": 1, "a": 8} },
	} {
		s := good
		mutate(&s)
		if s.check() == nil {
			t.Errorf("%s: check passed", name)
		}
	}
}
