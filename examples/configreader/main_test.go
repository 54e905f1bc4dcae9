package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/examples/internal/backend"
	"github.com/regentkv/regent/examples/internal/backendtest"
	"github.com/regentkv/regent/informer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigReader(t *testing.T) {
	backendtest.Each(t, time.Minute, func(t *testing.T, ctx context.Context, cluster *backend.Cluster) {
		outage := cluster.Embedded() // only an embedded server can be stopped and restarted
		var out bytes.Buffer
		sum, err := run(ctx, &out, cluster)
		t.Logf("output:\n%s", out.String())
		if err != nil {
			t.Fatal(err)
		}
		wantHealth := []int{503, 200, 503, 200} // before the sync, synced, bad push, good again
		wantFinal := Config{Greeting: "hello", Replicas: 5, LogLevel: "info"}
		if outage {
			wantHealth = []int{503, 200, 503, 200, 503, 200}
			wantFinal.LogLevel = "debug"
		}
		if sum.Outage != outage {
			t.Errorf("outage step ran: %v, want %v", sum.Outage, outage)
		}
		if !slices.Equal(sum.Health, wantHealth) {
			t.Errorf("/readyz went %v, want %v", sum.Health, wantHealth)
		}
		if sum.ServedAfterBadPush.Replicas != 5 {
			t.Errorf("after a bad push: served %s, want the last good config", sum.ServedAfterBadPush)
		}
		if !errors.Is(sum.EarlyReadErr, informer.ErrNotSynced) || !errors.Is(sum.EarlyReadErr, context.DeadlineExceeded) {
			t.Errorf("read before sync: got %v, want ErrNotSynced wrapping the deadline", sum.EarlyReadErr)
		}
		if len(sum.Changes) == 0 || !strings.Contains(sum.Changes[0], "replicas 3") || !strings.Contains(sum.Changes[0], "-> {greeting \"hello\", replicas 5") {
			t.Errorf("first change notification: got %q, want replicas 3 -> 5", sum.Changes)
		}
		if outage {
			if !errors.Is(sum.StaleErr, informer.ErrStale) {
				t.Errorf("Check while the store was down: got %v, want ErrStale", sum.StaleErr)
			}
			if want := (Config{Greeting: "hello", Replicas: 5, LogLevel: "info"}); sum.ServedWhileStale != want {
				t.Errorf("served while stale: got %v, want the last known %v", sum.ServedWhileStale, want)
			}
		}
		if sum.Final != wantFinal {
			t.Errorf("final config: got %v, want %v", sum.Final, wantFinal)
		}
	})
}

func TestDecodeConfigRefusesBadValues(t *testing.T) {
	for name, v := range map[string]string{
		"not json":         `replicas: 3`,
		"unknown field":    `{"greeting":"hi","replica":3}`,
		"negative replica": `{"replicas":-1}`,
	} {
		if c, err := decodeConfig("k", []byte(v)); err == nil {
			t.Errorf("%s: decoded %v, want an error", name, c)
		}
	}
	c, err := decodeConfig("k", []byte(`{"greeting":"hi","replicas":2,"logLevel":"warn"}`))
	if want := (Config{Greeting: "hi", Replicas: 2, LogLevel: "warn"}); err != nil || c != want {
		t.Errorf("good value: got %v, %v; want %v", c, err, want)
	}
}

func TestCheckCatchesBadRuns(t *testing.T) {
	good := summary{Health: []int{503, 200, 503, 200, 503, 200}, Live: []int{200, 200, 200, 200, 200, 200},
		Changes: []string{"a", "b"}, Outage: true, EarlyReadErr: informer.ErrNotSynced, StaleErr: informer.ErrStale,
		ServedWhileStale: Config{Greeting: "x"}, ServedAfterBadPush: Config{Replicas: 5}}
	if err := good.check(); err != nil {
		t.Fatalf("good summary: %v", err)
	}
	for name, mutate := range map[string]func(*summary){
		"never unhealthy": func(s *summary) { s.Health = []int{503, 200, 503, 200, 200, 200} },
		"bad push missed": func(s *summary) { s.Health = []int{503, 200, 200, 200, 503, 200} },
		"config lost":     func(s *summary) { s.ServedAfterBadPush = Config{} },
		"liveness failed": func(s *summary) { s.Live = []int{200, 200, 200, 200, 503, 200} },
		"missed change":   func(s *summary) { s.Changes = s.Changes[:1] },
		"not stale":       func(s *summary) { s.StaleErr = nil },
		"nothing served":  func(s *summary) { s.ServedWhileStale = Config{} },
		"early read ok":   func(s *summary) { s.EarlyReadErr = nil },
	} {
		s := good
		s.Health = slices.Clone(good.Health)
		s.Live = slices.Clone(good.Live)
		s.Changes = slices.Clone(good.Changes)
		mutate(&s)
		if s.check() == nil {
			t.Errorf("%s: check passed", name)
		}
	}
}
