package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/etcd/embedded"
	"github.com/regentkv/regent/kv/memory"
)

func main() {
	backend := flag.String("backend", "etcd", "etcd or memory")
	endpoints := flag.String("endpoints", "", "comma-separated etcd endpoints; empty starts an embedded etcd")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := run(ctx, *backend, *endpoints); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, backend, endpoints string) error {
	switch backend {
	case "memory":
		b := memory.NewBackend()
		defer b.Close()
		fmt.Println("backend: in-process memory store")
		return demo(ctx, os.Stdout, func() (kv.Store, error) { return b.Client(), nil })
	case "etcd":
		eps := strings.Split(endpoints, ",")
		if endpoints == "" {
			srv, err := embedded.Start(ctx)
			if err != nil {
				return fmt.Errorf("start embedded etcd: %w", err)
			}
			defer func() { _ = srv.Close() }()
			eps = srv.Endpoints()
			fmt.Printf("backend: embedded etcd at %s\n", strings.Join(eps, ","))
		} else {
			fmt.Printf("backend: etcd at %s\n", endpoints)
		}
		return demo(ctx, os.Stdout, func() (kv.Store, error) {
			return etcd.New(ctx, etcd.Config{Endpoints: eps})
		})
	default:
		return fmt.Errorf("unknown -backend %q: want etcd or memory", backend)
	}
}
