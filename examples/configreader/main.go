package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/regentkv/regent/examples/internal/backend"
)

func main() {
	flags := backend.Register(flag.CommandLine)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := open(ctx, flags); err != nil {
		fmt.Fprintln(os.Stderr, "configreader:", err)
		os.Exit(1)
	}
}

func open(ctx context.Context, flags *backend.Flags) error {
	cluster, err := flags.Open(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = cluster.Close() }()
	fmt.Println(cluster.Describe())
	_, err = run(ctx, os.Stdout, cluster)
	return err
}
