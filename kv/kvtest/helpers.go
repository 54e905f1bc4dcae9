package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/regentkv/regent/kv"
)

// mustPut writes value at key or fails the case.
func (e *env) mustPut(s kv.Store, key, value string, opts *kv.WriteOptions) {
	e.Helper()
	if err := s.Put(e.ctx, key, []byte(value), opts); err != nil {
		e.Fatalf("Put(%q, %q, %+v): %v", key, value, opts, err)
	}
}

// mustGet reads key or fails the case.
func (e *env) mustGet(s kv.Store, key string) *kv.KVPair {
	e.Helper()
	p, err := s.Get(e.ctx, key, nil)
	if err != nil {
		e.Fatalf("Get(%q): %v", key, err)
	}
	if p == nil {
		e.Fatalf("Get(%q) = nil pair with nil error", key)
	}
	return p
}

// wantValue checks that key holds value.
func (e *env) wantValue(s kv.Store, key, value string) *kv.KVPair {
	e.Helper()
	p := e.mustGet(s, key)
	if p.Key != key || string(p.Value) != value {
		e.Fatalf("Get(%q) = {Key %q, Value %q}, want {Key %q, Value %q}", key, p.Key, p.Value, key, value)
	}
	return p
}

// wantMissing checks that key does not exist, through Get and Exists.
func (e *env) wantMissing(s kv.Store, key string) {
	e.Helper()
	p, err := s.Get(e.ctx, key, nil)
	if !errors.Is(err, kv.ErrKeyNotFound) {
		e.Fatalf("Get(%q) = %v, %v; want error %v", key, p, err, kv.ErrKeyNotFound)
	}
	ok, err := s.Exists(e.ctx, key, nil)
	if err != nil || ok {
		e.Fatalf("Exists(%q) = %t, %v; want false, nil", key, ok, err)
	}
}

// wantErr checks that err matches target.
func (e *env) wantErr(what string, err, target error) {
	e.Helper()
	if !errors.Is(err, target) {
		e.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// wantList checks that List(prefix) returns exactly keys, with values.
func (e *env) wantList(s kv.Store, prefix string, want map[string]string) []*kv.KVPair {
	e.Helper()
	got, err := s.List(e.ctx, prefix, nil)
	if err != nil {
		e.Fatalf("List(%q): %v", prefix, err)
	}
	e.checkPairs(fmt.Sprintf("List(%q)", prefix), got, want)
	return got
}

// checkPairs checks that pairs are sorted and hold exactly want.
func (e *env) checkPairs(what string, got []*kv.KVPair, want map[string]string) {
	e.Helper()
	if len(got) != len(want) {
		e.Fatalf("%s returned %d pairs %s, want %d: %v", what, len(got), fmtPairs(got), len(want), want)
	}
	for i, p := range got {
		if p == nil {
			e.Fatalf("%s: pair %d is nil", what, i)
		}
		if i > 0 && got[i-1].Key >= p.Key {
			e.Fatalf("%s: not sorted by key: %s", what, fmtPairs(got))
		}
		v, ok := want[p.Key]
		if !ok || string(p.Value) != v || p.Value == nil {
			e.Fatalf("%s: unexpected pair {%q: %q}; got %s, want %v", what, p.Key, p.Value, fmtPairs(got), want)
		}
	}
}

// samePairs compares two pair lists by key, value and LastIndex.
func samePairs(a, b []*kv.KVPair) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] == nil || b[i] == nil || a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) || a[i].LastIndex != b[i].LastIndex {
			return false
		}
	}
	return true
}

func fmtPairs(ps []*kv.KVPair) string {
	var b strings.Builder
	b.WriteString("[")
	for i, p := range ps {
		if i > 0 {
			b.WriteString(" ")
		}
		if p == nil {
			b.WriteString("<nil>")
			continue
		}
		fmt.Fprintf(&b, "%s=%q@%d", p.Key, p.Value, p.LastIndex)
	}
	b.WriteString("]")
	return b.String()
}

// recv waits up to d for the next value of ch. ok is false when ch was
// closed; the case fails on timeout.
func recv[T any](e *env, ch <-chan T, d time.Duration, what string) (v T, ok bool) {
	e.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case v, ok = <-ch:
		return v, ok
	case <-t.C:
		e.Fatalf("%s: nothing received within %v", what, d)
	case <-e.ctx.Done():
		e.Fatalf("%s: case deadline reached: %v", what, e.ctx.Err())
	}
	return v, false
}

// next is recv that also fails when ch was closed.
func next[T any](e *env, ch <-chan T, d time.Duration, what string) T {
	e.Helper()
	v, ok := recv(e, ch, d, what)
	if !ok {
		e.Fatalf("%s: channel closed, want an update", what)
	}
	return v
}

// waitClosed drains ch until it is closed, failing after d.
func waitClosed[T any](e *env, ch <-chan T, d time.Duration, what string) {
	e.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-t.C:
			e.Fatalf("%s: channel not closed within %v", what, d)
		}
	}
}

// quiet checks that ch delivers nothing for d: the only way to observe that
// something does not happen.
func quiet[T any](e *env, ch <-chan T, d time.Duration, what string) {
	e.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case v, ok := <-ch:
		e.Fatalf("%s: got %+v (open %t), want nothing for %v", what, v, ok, d)
	case <-t.C:
	}
}

// eventually polls cond every 20ms until it is true, failing after d.
func (e *env) eventually(d time.Duration, what string, cond func() bool) {
	e.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			e.Fatalf("%s: not true within %v", what, d)
		}
		select {
		case <-tick.C:
		case <-e.ctx.Done():
			e.Fatalf("%s: case deadline reached: %v", what, e.ctx.Err())
		}
	}
}

// consistently polls cond every 100ms for d and fails as soon as it is
// false.
func (e *env) consistently(d time.Duration, what string, cond func() bool) {
	e.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if !cond() {
			e.Fatalf("%s: became false before %v had passed", what, d)
		}
		select {
		case <-tick.C:
		case <-e.ctx.Done():
			e.Fatalf("%s: case deadline reached: %v", what, e.ctx.Err())
		}
	}
}

// exists reports whether key exists, failing the case on error.
func (e *env) exists(s kv.Store, key string) bool {
	e.Helper()
	ok, err := s.Exists(e.ctx, key, nil)
	if err != nil {
		e.Fatalf("Exists(%q): %v", key, err)
	}
	return ok
}

// cancelled returns a context that has already ended.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// sub returns a cancellable child of the case context.
func (e *env) sub() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(e.ctx)
	e.Cleanup(cancel)
	return ctx, cancel
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
