package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/examples/internal/backend"
	"github.com/regentkv/regent/examples/internal/backendtest"
	"github.com/regentkv/regent/kv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSingleton(t *testing.T) {
	backendtest.Each(t, time.Minute, func(t *testing.T, ctx context.Context, cluster *backend.Cluster) {
		var out bytes.Buffer
		sum, err := run(ctx, &out, cluster)
		t.Logf("output:\n%s", out.String())
		if err != nil {
			t.Fatal(err)
		}
		if sum.MaxInFlight != 1 {
			t.Errorf("runs in flight at once: got %d, want 1", sum.MaxInFlight)
		}
		if !increasing(sum.Tokens) || len(sum.Tokens) != 3 {
			t.Errorf("term tokens: got %v, want 3 strictly increasing", sum.Tokens)
		}
		if !errors.Is(sum.StaleErr, kv.ErrLockLost) {
			t.Errorf("stale write: got %v, want kv.ErrLockLost", sum.StaleErr)
		}
		if sum.Final.Run != sum.Runs || sum.Runs < 3*phase {
			t.Errorf("report run %d, acknowledged runs %d; want equal and at least %d", sum.Final.Run, sum.Runs, 3*phase)
		}
		if sum.Leaders[2] == sum.CrashedLeader || sum.Leaders[1] != sum.CrashedLeader {
			t.Errorf("leaders %v, crashed %s: want the second leader crashed and another taking over", sum.Leaders, sum.CrashedLeader)
		}
		// The handover rides on a watch, not on the TTL.
		if sum.HandoverTook >= sum.TTL {
			t.Errorf("handover took %v, want less than the TTL %v", sum.HandoverTook, sum.TTL)
		}
		if !strings.Contains(out.String(), "ok: the job never ran twice at once") {
			t.Error("output lacks the final ok line")
		}
	})
}

func TestCheckCatchesOverlap(t *testing.T) {
	good := summary{Tokens: []uint64{1, 2, 3}, MaxInFlight: 1, StaleErr: kv.ErrLockLost, Runs: 5, Final: report{Run: 5, Token: 3}}
	if err := good.check(); err != nil {
		t.Fatalf("good summary: %v", err)
	}
	for name, mutate := range map[string]func(*summary){
		"overlap":       func(s *summary) { s.MaxInFlight = 2 },
		"token reused":  func(s *summary) { s.Tokens = []uint64{1, 3, 3} },
		"stale landed":  func(s *summary) { s.StaleErr = nil },
		"lost run":      func(s *summary) { s.Final.Run = 4 },
		"foreign token": func(s *summary) { s.Final.Token = 2 },
	} {
		s := good
		s.Tokens = append([]uint64(nil), good.Tokens...)
		mutate(&s)
		if s.check() == nil {
			t.Errorf("%s: check passed", name)
		}
	}
}
