package main

import (
	"context"
	"io"
	"time"

	"github.com/regentkv/regent/examples/internal/backend"
)

func main() {
	backend.Main("discovery", 2*time.Minute, func(ctx context.Context, out io.Writer, cluster *backend.Cluster) error {
		_, err := run(ctx, out, cluster)
		return err
	})
}
