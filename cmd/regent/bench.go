package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/regentkv/regent/kv"
)

type latencyJSON struct {
	Op        string  `json:"op"`
	Count     int     `json:"count"`
	PerSecond float64 `json:"per_second"`
	P50ms     float64 `json:"p50_ms"`
	P90ms     float64 `json:"p90_ms"`
	P99ms     float64 `json:"p99_ms"`
	Maxms     float64 `json:"max_ms"`
}

func (a *app) benchCmd() *cobra.Command {
	var count, concurrency, size int
	var prefix string
	c := &cobra.Command{
		Use:   "bench",
		Short: "A quick latency check: puts, then consistent gets, of keys below a scratch prefix that is deleted after",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 1 || concurrency < 1 || size < 0 {
				return usage("bench: want --count and --concurrency at least 1, --size at least 0")
			}
			if prefix == "" {
				prefix = fmt.Sprintf("regent-bench-%d", time.Now().UnixNano())
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			octx, ocancel := a.oneShot(ctx)
			s, err := a.open(octx, "")
			ocancel()
			if err != nil {
				return err
			}
			defer func() { _ = s.Close() }()
			defer func() {
				cctx, ccancel := context.WithTimeout(context.Background(), max(a.timeout, 10*time.Second))
				defer ccancel()
				_ = s.DeleteTree(cctx, prefix)
			}()
			value := make([]byte, size)
			_, _ = rand.Read(value)
			key := func(i int) string { return fmt.Sprintf("%s/k%06d", prefix, i) }
			var rows []latencyJSON
			for _, op := range []struct {
				name string
				fn   func(ctx context.Context, i int) error
			}{
				{"put", func(ctx context.Context, i int) error { return s.Put(ctx, key(i), value, nil) }},
				{"get", func(ctx context.Context, i int) error {
					_, err := s.Get(ctx, key(i), &kv.ReadOptions{Consistent: true})
					return err
				}},
			} {
				r, err := measure(ctx, count, concurrency, op.fn)
				if err != nil {
					return fmt.Errorf("bench %s: %w", op.name, err)
				}
				r.Op = op.name
				rows = append(rows, r)
			}
			if a.output == "json" {
				return a.json(rows)
			}
			var out [][]string
			for _, r := range rows {
				out = append(out, []string{r.Op, fmt.Sprint(r.Count), fmt.Sprintf("%.0f", r.PerSecond),
					fmt.Sprintf("%.3f", r.P50ms), fmt.Sprintf("%.3f", r.P90ms), fmt.Sprintf("%.3f", r.P99ms), fmt.Sprintf("%.3f", r.Maxms)})
			}
			return a.table([]string{"OP", "COUNT", "PER-SECOND", "P50-MS", "P90-MS", "P99-MS", "MAX-MS"}, out)
		},
	}
	c.Flags().IntVar(&count, "count", 500, "operations of each kind")
	c.Flags().IntVar(&concurrency, "concurrency", 1, "operations in flight at once")
	c.Flags().IntVar(&size, "size", 100, "value size in bytes")
	c.Flags().StringVar(&prefix, "prefix", "", "scratch prefix (default regent-bench-<time>); deleted after")
	return c
}

func measure(ctx context.Context, count, concurrency int, fn func(context.Context, int) error) (latencyJSON, error) {
	took := make([]time.Duration, count)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	start := time.Now()
	var mu sync.Mutex
	for i := range count {
		g.Go(func() error {
			t0 := time.Now()
			err := fn(gctx, i)
			mu.Lock()
			took[i] = time.Since(t0)
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return latencyJSON{}, err
	}
	all := time.Since(start)
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	at := func(q float64) time.Duration { return took[min(len(took)-1, int(q*float64(len(took))))] }
	return latencyJSON{Count: count, PerSecond: float64(count) / all.Seconds(),
		P50ms: ms(at(0.5)), P90ms: ms(at(0.9)), P99ms: ms(at(0.99)), Maxms: ms(took[len(took)-1])}, nil
}
