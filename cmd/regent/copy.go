package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/regentkv/regent/kv"
)

// readAll reads every pair below prefix, with the revision it was read at
// when the store has one (a consistent snapshot: follow goes on from it).
func readAll(ctx context.Context, s kv.Store, prefix string) ([]*kv.KVPair, uint64, error) {
	if st, ok := s.(kv.Streamer); ok {
		snap, err := st.Snapshot(ctx, prefix)
		if err != nil {
			return nil, 0, err
		}
		return snap.Pairs, snap.Revision, nil
	}
	pairs, err := s.List(ctx, prefix, &kv.ReadOptions{Consistent: true})
	if errors.Is(err, kv.ErrKeyNotFound) {
		err = nil
	}
	return pairs, 0, err
}

// plan is what a copy would change in the destination.
type plan struct {
	create, update []*kv.KVPair // from the source
	same           int
	extra          []string // keys only the destination has
	bytes          int64
}

func makePlan(src, dst []*kv.KVPair) *plan {
	have := make(map[string][]byte, len(dst))
	for _, p := range dst {
		have[p.Key] = p.Value
	}
	p := &plan{}
	for _, s := range src {
		v, ok := have[s.Key]
		switch {
		case !ok:
			p.create = append(p.create, s)
			p.bytes += int64(len(s.Value))
		case !bytes.Equal(v, s.Value):
			p.update = append(p.update, s)
			p.bytes += int64(len(s.Value))
		default:
			p.same++
		}
		delete(have, s.Key)
	}
	for k := range have {
		p.extra = append(p.extra, k)
	}
	return p
}

type copyReport struct {
	Source      string  `json:"source"`
	Destination string  `json:"destination"`
	Prefix      string  `json:"prefix"`
	DryRun      bool    `json:"dry_run"`
	Created     int     `json:"created"`
	Updated     int     `json:"updated"`
	Unchanged   int     `json:"unchanged"`
	Pruned      int     `json:"pruned"`
	Extra       int     `json:"extra_in_destination"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	Revision    uint64  `json:"source_revision,omitempty"`
}

func (a *app) copyCmd() *cobra.Command {
	var dryRun, follow, prune bool
	var workers int
	var progress string
	c := &cobra.Command{
		Use:   "copy SRC DST [PREFIX]",
		Short: "Copy the keys below PREFIX (all keys without one) from one store to another, then optionally follow",
		Long: `copy reads a consistent snapshot of SRC below PREFIX and writes to DST
what differs there (keys already equal are not written again), with a
progress bar on a terminal. --dry-run says what it would do and writes
nothing; --prune also deletes the keys below PREFIX that only DST has.

--follow then applies every later change of SRC to DST, deletes
included, until interrupted: a migration copies, follows while clients
move over, and stops once nothing writes to SRC any more.

Keys keep their names (below each store's own root) and values. A key's
TTL is not carried over: the kv contract does not report it, so a TTL key
arrives as a permanent one (its expiry in SRC shows up as a delete under
--follow).`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if workers < 1 {
				return usage("--workers %d: want at least 1", workers)
			}
			prefix := ""
			if len(args) == 3 {
				prefix = args[2]
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			bctx, bcancel := a.oneShot(ctx)
			defer bcancel()
			src, err := a.open(bctx, args[0])
			if err != nil {
				return err
			}
			defer func() { _ = src.Close() }()
			dst, err := a.open(bctx, args[1])
			if err != nil {
				return err
			}
			defer func() { _ = dst.Close() }()
			start := time.Now()
			pairs, rev, err := readAll(bctx, src, prefix)
			if err != nil {
				return fmt.Errorf("copy: read the source: %w", err)
			}
			have, _, err := readAll(bctx, dst, prefix)
			if err != nil {
				return fmt.Errorf("copy: read the destination: %w", err)
			}
			pl := makePlan(pairs, have)
			rep := copyReport{Source: args[0], Destination: args[1], Prefix: prefix, DryRun: dryRun,
				Created: len(pl.create), Updated: len(pl.update), Unchanged: pl.same, Extra: len(pl.extra), Bytes: pl.bytes, Revision: rev}
			if !dryRun {
				// Writes are not bounded by --timeout: a big copy takes
				// what it takes, each call bounded by the driver.
				bar := a.bar(progress, len(pl.create)+len(pl.update)+len(pl.extra)*boolInt(prune))
				if err := writeAll(ctx, dst, append(pl.create, pl.update...), workers, bar); err != nil {
					return err
				}
				if prune {
					if err := deleteAll(ctx, dst, pl.extra, workers, bar); err != nil {
						return err
					}
					rep.Pruned, rep.Extra = len(pl.extra), 0
				}
				_ = bar.Finish()
			}
			rep.Seconds = time.Since(start).Seconds()
			if err := a.printCopy(rep); err != nil {
				return err
			}
			if !follow || dryRun {
				return nil
			}
			return a.follow(ctx, src, dst, prefix, rev)
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "say what would change in DST, write nothing")
	c.Flags().BoolVar(&follow, "follow", false, "after the copy, apply every change of SRC to DST until interrupted")
	c.Flags().BoolVar(&prune, "prune", false, "delete the keys below PREFIX that only DST has")
	c.Flags().IntVar(&workers, "workers", 16, "writes in flight at once")
	c.Flags().StringVar(&progress, "progress", "auto", "progress bar: auto (on a terminal), always or never")
	return c
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bar is the progress bar of n writes on standard error, or a silent one.
func (a *app) bar(mode string, n int) *progressbar.ProgressBar {
	show := mode == "always"
	if mode == "auto" {
		if f, ok := a.stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				show = true
			}
		}
	}
	if !show {
		return progressbar.DefaultSilent(int64(n))
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(a.stderr), progressbar.OptionSetDescription("copy"),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("keys"),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(a.stderr) }))
}

func (a *app) printCopy(r copyReport) error {
	if a.output == "json" {
		return a.json(r)
	}
	verb := "copied"
	if r.DryRun {
		verb = "would copy"
	}
	_, err := fmt.Fprintf(a.stdout, "%s %d keys (%d new, %d changed, %d bytes), %d already equal, %d pruned, %d only in the destination, in %.2fs\n",
		verb, r.Created+r.Updated, r.Created, r.Updated, r.Bytes, r.Unchanged, r.Pruned, r.Extra, r.Seconds)
	return err
}

// writeAll puts pairs into dst, workers at a time; the first failure
// stops the rest and is returned with the key it failed on.
func writeAll(ctx context.Context, dst kv.Store, pairs []*kv.KVPair, workers int, bar *progressbar.ProgressBar) error {
	return forEach(ctx, len(pairs), workers, func(ctx context.Context, i int) error {
		p := pairs[i]
		if err := dst.Put(ctx, p.Key, p.Value, nil); err != nil {
			return fmt.Errorf("copy: put %q: %w", p.Key, err)
		}
		return nil
	}, bar)
}

func deleteAll(ctx context.Context, dst kv.Store, keys []string, workers int, bar *progressbar.ProgressBar) error {
	return forEach(ctx, len(keys), workers, func(ctx context.Context, i int) error {
		if err := dst.Delete(ctx, keys[i]); err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
			return fmt.Errorf("copy: prune %q: %w", keys[i], err)
		}
		return nil
	}, bar)
}

// forEach runs fn for 0..n-1, workers at a time, adding one to the bar
// per call done.
func forEach(ctx context.Context, n, workers int, fn func(context.Context, int) error, bar *progressbar.ProgressBar) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var mu sync.Mutex
	for i := range n {
		g.Go(func() error {
			if err := fn(ctx, i); err != nil {
				return err
			}
			mu.Lock()
			_ = bar.Add(1)
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// follow applies the changes of src below prefix after rev to dst until
// ctx ends. A source without history for rev (compacted) is copied again
// from a new snapshot, so nothing is missed.
func (a *app) follow(ctx context.Context, src, dst kv.Store, prefix string, rev uint64) error {
	st, ok := src.(kv.Streamer)
	if !ok {
		return fmt.Errorf("copy --follow: the source cannot stream changes: %w", kv.ErrCallNotSupported)
	}
	fmt.Fprintf(a.stderr, "following changes from revision %d; interrupt to stop\n", rev)
	for {
		batches, err := st.Events(ctx, prefix, rev)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("copy --follow: %w", err)
		}
		for b := range batches {
			if b.Err != nil {
				break
			}
			for _, ev := range b.Events {
				var err error
				if ev.Type == kv.EventPut {
					err = dst.Put(ctx, ev.Pair.Key, ev.Pair.Value, nil)
				} else if err = dst.Delete(ctx, ev.Pair.Key); errors.Is(err, kv.ErrKeyNotFound) {
					err = nil
				}
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("copy --follow: %s %q: %w", ev.Type, ev.Pair.Key, err)
				}
			}
			rev = b.Revision
			if a.output == "json" && len(b.Events) > 0 {
				_ = a.json(map[string]any{"applied": len(b.Events), "source_revision": rev})
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		// The stream ended with an error: compacted history needs a new
		// snapshot; anything else is tried again from rev after a pause.
		pairs, srev, err := readAll(ctx, src, prefix)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("copy --follow: read the source again: %w", err)
		}
		have, _, err := readAll(ctx, dst, prefix)
		if err != nil {
			return fmt.Errorf("copy --follow: read the destination again: %w", err)
		}
		pl := makePlan(pairs, have)
		quiet := progressbar.DefaultSilent(-1)
		if err := writeAll(ctx, dst, append(pl.create, pl.update...), 16, quiet); err != nil {
			return err
		}
		if err := deleteAll(ctx, dst, pl.extra, 16, quiet); err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "resynced from revision %d (%d written, %d deleted)\n", srev, len(pl.create)+len(pl.update), len(pl.extra))
		rev = srev
	}
}

func (a *app) diffCmd() *cobra.Command {
	var keysOnly bool
	c := &cobra.Command{
		Use:   "diff SRC DST [PREFIX]",
		Short: "Compare the keys below PREFIX of two stores (exit 7 when they differ)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 3 {
				prefix = args[2]
			}
			ctx, cancel := a.oneShot(cmd.Context())
			defer cancel()
			src, err := a.open(ctx, args[0])
			if err != nil {
				return err
			}
			defer func() { _ = src.Close() }()
			dst, err := a.open(ctx, args[1])
			if err != nil {
				return err
			}
			defer func() { _ = dst.Close() }()
			left, _, err := readAll(ctx, src, prefix)
			if err != nil {
				return fmt.Errorf("diff: read %s: %w", args[0], err)
			}
			right, _, err := readAll(ctx, dst, prefix)
			if err != nil {
				return fmt.Errorf("diff: read %s: %w", args[1], err)
			}
			pl := makePlan(left, right)
			type entry struct {
				Key  string `json:"key"`
				What string `json:"what"` // only-in-source, only-in-destination, differs
			}
			var out []entry
			for _, p := range pl.create {
				out = append(out, entry{p.Key, "only-in-source"})
			}
			for _, k := range pl.extra {
				out = append(out, entry{k, "only-in-destination"})
			}
			for _, p := range pl.update {
				out = append(out, entry{p.Key, "differs"})
			}
			sortEntries := func(i, j int) bool { return out[i].Key < out[j].Key }
			sortSlice(out, sortEntries)
			if a.output == "json" {
				if out == nil {
					out = []entry{}
				}
				if err := a.json(out); err != nil {
					return err
				}
			} else {
				for _, e := range out {
					mark := map[string]string{"only-in-source": "-", "only-in-destination": "+", "differs": "~"}[e.What]
					if keysOnly {
						fmt.Fprintln(a.stdout, mark+" "+e.Key)
					} else {
						fmt.Fprintf(a.stdout, "%s %s (%s)\n", mark, e.Key, e.What)
					}
				}
			}
			if len(out) > 0 {
				return withStatus(exitDiffer, "%d of %d keys differ (%d equal)", len(out), pl.same+len(out), pl.same)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&keysOnly, "keys-only", false, "print the keys and marks only")
	return c
}
