package backend

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

// Main is an example program's main: it parses the backend flags, opens
// the cluster, prints what it talks to, and calls run with a ctx that ends on
// Ctrl-C or after timeout (a demo never hangs). On error it prints it,
// prefixed with name, and exits 1.
func Main(name string, timeout time.Duration, run func(ctx context.Context, out io.Writer, cluster *Cluster) error) {
	flags := Register(flag.CommandLine)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	err := open(ctx, flags, run)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func open(ctx context.Context, flags *Flags, run func(context.Context, io.Writer, *Cluster) error) error {
	cluster, err := flags.Open(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = cluster.Close() }()
	fmt.Println(cluster.Describe())
	return run(ctx, os.Stdout, cluster)
}
