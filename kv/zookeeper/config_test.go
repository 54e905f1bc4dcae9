package zookeeper_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regentkv/regent/kv/zookeeper"
)

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  zookeeper.Config
	}{
		{"no servers", zookeeper.Config{}},
		{"empty server", zookeeper.Config{Servers: []string{""}}},
		{"comma in server", zookeeper.Config{Servers: []string{"a:1,b:2"}}},
		{"different chroots", zookeeper.Config{Servers: []string{"a:1/x", "b:2/y"}}},
		{"negative session timeout", zookeeper.Config{Servers: []string{"a:1"}, SessionTimeout: -time.Second}},
		{"relative root", zookeeper.Config{Servers: []string{"a:1"}, Root: "regent"}},
		{"root slash", zookeeper.Config{Servers: []string{"a:1"}, Root: "/"}},
		{"root trailing slash", zookeeper.Config{Servers: []string{"a:1"}, Root: "/regent/"}},
		{"auth without password", zookeeper.Config{Servers: []string{"a:1"}, Auth: "alice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := zookeeper.New(context.Background(), tc.cfg)
			if !errors.Is(err, zookeeper.ErrInvalidConfig) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("New: got %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestNewHonoursContext(t *testing.T) {
	// Nothing listens there: New waits for a session until ctx ends.
	cfg := config([]string{"127.0.0.1:1"}, "/x")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, err := zookeeper.New(ctx, cfg)
	if err == nil {
		_ = s.Close()
		t.Fatal("New with no server succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New: got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("New took %v after its ctx ended", d)
	}
}
