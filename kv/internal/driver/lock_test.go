package driver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regentkv/regent/kv"
)

func TestResolveLock(t *testing.T) {
	minTTL := func(ttl time.Duration) error {
		if ttl < 2*time.Second {
			return &kv.TTLError{TTL: ttl, Min: 2 * time.Second}
		}
		return nil
	}
	p := LockPolicy{DefaultTTL: 9 * time.Second, CheckTTL: minTTL, Margin: LostMargin}
	for _, tc := range []struct {
		name    string
		opts    *kv.LockOptions
		bad     bool
		ttl     time.Duration
		renewAt time.Duration // Deadline(ttl)
		every   time.Duration // RenewEvery(ttl)
	}{
		{"defaults", nil, false, 9 * time.Second, 6 * time.Second, 3 * time.Second},
		{"TTL", &kv.LockOptions{TTL: 3 * time.Second}, false, 3 * time.Second, 2 * time.Second, time.Second},
		{"short deadline", &kv.LockOptions{TTL: 3 * time.Second, RenewDeadline: 600 * time.Millisecond}, false, 3 * time.Second, 600 * time.Millisecond, 200 * time.Millisecond},
		{"deadline shortened to the margin", &kv.LockOptions{TTL: 3 * time.Second, RenewDeadline: 2900 * time.Millisecond}, false, 3 * time.Second, 2700 * time.Millisecond, 2900 * time.Millisecond / 3},
		{"deadline at the default TTL", &kv.LockOptions{RenewDeadline: 9 * time.Second}, true, 0, 0, 0},
		{"deadline at the TTL", &kv.LockOptions{TTL: 3 * time.Second, RenewDeadline: 3 * time.Second}, true, 0, 0, 0},
		{"negative TTL", &kv.LockOptions{TTL: -time.Second}, true, 0, 0, 0},
		{"negative deadline", &kv.LockOptions{RenewDeadline: -time.Second}, true, 0, 0, 0},
		{"TTL below the backend's", &kv.LockOptions{TTL: time.Second}, true, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ResolveLock(tc.opts, p)
			if tc.bad {
				var te *kv.TTLError
				if !errors.As(err, &te) {
					t.Fatalf("ResolveLock: %v; want a *kv.TTLError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.TTL != tc.ttl || l.Deadline(l.TTL) != tc.renewAt || l.RenewEvery(l.TTL) != tc.every || l.Value == nil {
				t.Errorf("TTL %v, Deadline %v, RenewEvery %v, Value %v; want %v, %v, %v, non-nil",
					l.TTL, l.Deadline(l.TTL), l.RenewEvery(l.TTL), l.Value, tc.ttl, tc.renewAt, tc.every)
			}
		})
	}
	v := []byte("me")
	l, err := ResolveLock(&kv.LockOptions{Value: v}, p)
	if err != nil {
		t.Fatal(err)
	}
	v[0] = 'x'
	if string(l.Value) != "me" {
		t.Errorf("Value %q: want a copy of the caller's", l.Value)
	}
	if d := (Lock{renew: 0}).Deadline(100 * time.Millisecond); d != 66666666 {
		t.Errorf("no margin: Deadline %v; want two thirds", d)
	}
	if d := (Lock{margin: LostMargin}).Deadline(100 * time.Millisecond); d != 0 {
		t.Errorf("a margin longer than the TTL: Deadline %v; want 0, never negative", d)
	}
}

func TestNewLockArgsChecksInOrder(t *testing.T) {
	p := LockPolicy{DefaultTTL: 9 * time.Second}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	closed := errors.New("closed")
	for _, tc := range []struct {
		name   string
		key    string
		opts   *kv.LockOptions
		ctx    context.Context
		closed error
		want   error
	}{
		{"bad key first", "a//b", &kv.LockOptions{TTL: -1}, ended, closed, kv.ErrInvalidKey},
		{"then the options", "k", &kv.LockOptions{TTL: -1}, ended, closed, kv.ErrInvalidTTL},
		{"then the ctx", "k", nil, ended, closed, context.Canceled},
		{"then the store", "k", nil, context.Background(), closed, closed},
	} {
		if _, _, err := NewLockArgs(tc.ctx, tc.key, tc.opts, p, tc.closed); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
	}
	k, l, err := NewLockArgs(context.Background(), "/a/b/", nil, p, nil)
	if err != nil || k != "a/b" || l.TTL != 9*time.Second {
		t.Errorf("NewLockArgs: %q, %+v, %v; want the normalised key and the default TTL", k, l, err)
	}
}
