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

// TestReconciler runs the demo to completion on each backend and checks
// what it promises: one leader at a time did all the work, the crash
// handed over within the TTL plus a margin, and the new leader converged
// every change made while nobody led, the deleted app included.
func TestReconciler(t *testing.T) {
	backendtest.Each(t, 2*time.Minute, checkReconciler)
}

// TestReconcilerSecured is TestReconciler on servers secured as production
// runs them, through the example's -tls-* and credential flags: the
// controller Manager (informers, election, workers) needs nothing beyond
// an application identity granted the Store's root.
func TestReconcilerSecured(t *testing.T) {
	backendtest.EachSecured(t, 2*time.Minute, checkReconciler)
}

func checkReconciler(t *testing.T, ctx context.Context, cluster *backend.Cluster) {
	var out bytes.Buffer
	sum, err := run(ctx, &out, cluster)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if sum.First.Identity == "" || sum.Second.Identity == sum.First.Identity || sum.Second.Token <= sum.First.Token {
		t.Errorf("leaders %+v then %+v: want two different ones, the second with a higher token", sum.First, sum.Second)
	}
	// The crashed leader's lease must expire: not much faster than
	// the TTL (a crash is not a release), not much slower either.
	if sum.Failover < sum.TTL/2 || sum.Failover > sum.TTL+10*time.Second {
		t.Errorf("failover took %v with TTL %v", sum.Failover, sum.TTL)
	}
	after := map[string]string{}
	for _, r := range sum.Reconciles {
		switch r.Replica {
		case sum.First.Identity:
			if r.Token != sum.First.Token {
				t.Errorf("%+v: first leader wrote with another token than its term's %d", r, sum.First.Token)
			}
		case sum.Second.Identity:
			if r.Token != sum.Second.Token {
				t.Errorf("%+v: second leader wrote with another token than its term's %d", r, sum.Second.Token)
			}
			after[r.App] = r.Action
		default:
			t.Errorf("%+v: a replica that never led reconciled", r)
		}
	}
	if !strings.HasPrefix(after["web"], "updated") || after["api"] != "removed" || !strings.HasPrefix(after["cache"], "deployed") {
		t.Errorf("after the failover the new leader did %v, want web updated, api removed, cache deployed", after)
	}
	if _, ok := after["worker"]; ok {
		t.Errorf("the new leader rewrote worker, which was up to date")
	}
}
