package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvurl"
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

// ttlsOf returns the keys below prefix that expire, where s can tell.
func ttlsOf(ctx context.Context, s kv.Store, prefix string) (map[string]kv.KeyTTL, error) {
	r, ok := s.(kv.TTLReporter)
	if !ok {
		return nil, nil
	}
	return r.TTLs(ctx, prefix)
}

// readSource reads the source's pairs and which of them expire. The TTLs
// are read before and after the snapshot, and a key listed by either
// expires: one that expired (and went) between the snapshot and a single
// read of the TTLs would otherwise be written as a permanent key.
func readSource(ctx context.Context, s kv.Store, prefix string) ([]*kv.KVPair, uint64, map[string]kv.KeyTTL, error) {
	before, err := ttlsOf(ctx, s, prefix)
	if err != nil {
		return nil, 0, nil, err
	}
	pairs, rev, err := readAll(ctx, s, prefix)
	if err != nil {
		return nil, 0, nil, err
	}
	after, err := ttlsOf(ctx, s, prefix)
	if err != nil {
		return nil, 0, nil, err
	}
	for k, t := range before {
		if _, ok := after[k]; !ok && after != nil {
			t.Remaining = 0 // about to go: its whole TTL, not a stale remainder
			after[k] = t
		}
	}
	return pairs, rev, after, nil
}

// writeOptions carries a source key's expiry: what is left of its TTL
// where the source says, its whole TTL otherwise. A KeepAlive key (its
// writer's, in the source) arrives as a TTL key: nobody keeps it alive in
// the destination.
func writeOptions(t kv.KeyTTL, ok bool) *kv.WriteOptions {
	if !ok {
		return nil
	}
	d := t.TTL
	if t.Remaining > 0 {
		d = t.Remaining
	}
	return &kv.WriteOptions{TTL: d}
}

// plan is what a copy would change in the destination.
type plan struct {
	create, update []*kv.KVPair // from the source
	same           int
	extra          []string // keys only the destination has
	bytes          int64
	ttls           map[string]kv.KeyTTL // the source's expiring keys
	expiring       int                  // of create and update
}

// makePlan compares the source's pairs with the destination's. A key
// counts as equal when its value is, and it expires in both or neither.
func makePlan(src, dst []*kv.KVPair, srcTTLs, dstTTLs map[string]kv.KeyTTL) *plan {
	have := make(map[string][]byte, len(dst))
	for _, p := range dst {
		have[p.Key] = p.Value
	}
	p := &plan{ttls: srcTTLs}
	for _, s := range src {
		v, ok := have[s.Key]
		_, expires := srcTTLs[s.Key]
		_, expiresThere := dstTTLs[s.Key]
		delete(have, s.Key)
		switch {
		case !ok:
			p.create = append(p.create, s)
		case !bytes.Equal(v, s.Value) || expires != expiresThere:
			p.update = append(p.update, s)
		default:
			p.same++
			continue
		}
		p.bytes += int64(len(s.Value))
		if expires {
			p.expiring++
		}
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
	Expiring    int     `json:"expiring"`   // written with a TTL
	TTLRaised   int     `json:"ttl_raised"` // TTLs raised to the destination's minimum
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

Keys keep their names (below each store's own root), values and
expiry: a TTL key is written with what is left of its TTL where SRC can
tell (etcd), its whole TTL otherwise, raised to DST's minimum if below
it; a KeepAlive key (a live process's registration, say) arrives as a
TTL key, as nobody keeps it alive in DST. Under --follow, a key written
with a TTL after the snapshot arrives permanent (changes do not carry
TTLs); its expiry in SRC arrives as a delete.`,
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
			// --timeout bounds the connections; the reads take what a
			// big tree takes, each call bounded by its driver.
			bcancel()
			pairs, rev, srcTTLs, err := readSource(ctx, src, prefix)
			if err != nil {
				return fmt.Errorf("copy: read the source: %w", err)
			}
			have, _, err := readAll(ctx, dst, prefix)
			if err != nil {
				return fmt.Errorf("copy: read the destination: %w", err)
			}
			dstTTLs, err := ttlsOf(ctx, dst, prefix)
			if err != nil {
				return fmt.Errorf("copy: read the destination's TTLs: %w", err)
			}
			pl := makePlan(pairs, have, srcTTLs, dstTTLs)
			rep := copyReport{Source: kvurl.Redacted(args[0]), Destination: kvurl.Redacted(args[1]), Prefix: prefix, DryRun: dryRun,
				Created: len(pl.create), Updated: len(pl.update), Unchanged: pl.same, Extra: len(pl.extra), Bytes: pl.bytes,
				Expiring: pl.expiring, Revision: rev}
			if !dryRun {
				// Writes are not bounded by --timeout: a big copy takes
				// what it takes, each call bounded by the driver.
				bar := a.bar(progress, len(pl.create)+len(pl.update)+len(pl.extra)*boolInt(prune))
				raised, err := writeAll(ctx, dst, append(pl.create, pl.update...), pl.ttls, workers, bar)
				rep.TTLRaised = raised
				if err != nil {
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
			return a.follow(ctx, src, dst, prefix, rev, srcTTLs, prune)
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

// followRetry is the pause before follow reads the source again after its
// stream ended.
const followRetry = time.Second

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
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { _, _ = fmt.Fprintln(a.stderr) }))
}

func (a *app) printCopy(r copyReport) error {
	if a.output == "json" {
		return a.json(r)
	}
	verb := "copied"
	if r.DryRun {
		verb = "would copy"
	}
	ttl := ""
	if r.Expiring > 0 {
		ttl = fmt.Sprintf(", %d of them with a TTL (%d raised to the destination's minimum)", r.Expiring, r.TTLRaised)
	}
	_, err := fmt.Fprintf(a.stdout, "%s %d keys (%d new, %d changed, %d bytes)%s, %d already equal, %d pruned, %d only in the destination, in %.2fs\n",
		verb, r.Created+r.Updated, r.Created, r.Updated, r.Bytes, ttl, r.Unchanged, r.Pruned, r.Extra, r.Seconds)
	return err
}

// writeAll puts pairs into dst, workers at a time, with the TTLs ttls
// gives them; the first failure stops the rest and is returned with the
// key it failed on. A TTL below the destination's minimum is raised to it
// (a TTL key must not become permanent, nor be left out); it returns how
// many were.
func writeAll(ctx context.Context, dst kv.Store, pairs []*kv.KVPair, ttls map[string]kv.KeyTTL, workers int, bar *progressbar.ProgressBar) (int, error) {
	var raised atomic.Int64
	err := forEach(ctx, len(pairs), workers, func(ctx context.Context, i int) error {
		p := pairs[i]
		t, ok := ttls[p.Key]
		opts := writeOptions(t, ok)
		err := dst.Put(ctx, p.Key, p.Value, opts)
		var te *kv.TTLError
		if errors.As(err, &te) && opts != nil && te.Min > opts.TTL {
			raised.Add(1)
			err = dst.Put(ctx, p.Key, p.Value, &kv.WriteOptions{TTL: te.Min})
		}
		if err != nil {
			return fmt.Errorf("copy: put %q: %w", p.Key, err)
		}
		return nil
	}, bar)
	return int(raised.Load()), err
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
// (if any) per call done.
func forEach(ctx context.Context, n, workers int, fn func(context.Context, int) error, bar *progressbar.ProgressBar) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var mu sync.Mutex
	for i := range n {
		g.Go(func() error {
			if err := fn(ctx, i); err != nil {
				return err
			}
			if bar != nil {
				mu.Lock()
				_ = bar.Add(1)
				mu.Unlock()
			}
			return nil
		})
	}
	return g.Wait()
}

// follow applies the changes of src below prefix after rev to dst until
// ctx ends. A source without history for rev (compacted) is copied again
// from a new snapshot, so nothing is missed.
//
// A put of a key that expired in the snapshot keeps its TTL; a key
// written with a TTL after the snapshot arrives permanent (events do not
// carry TTLs), and goes from the destination when its expiry in the
// source arrives as a delete.
//
// After a stream ends, the destination is brought level again from a new
// snapshot; keys only the destination has are deleted then only with
// --prune (clients already moved may write there).
func (a *app) follow(ctx context.Context, src, dst kv.Store, prefix string, rev uint64, ttls map[string]kv.KeyTTL, prune bool) error {
	for k, t := range ttls {
		// A put from now on restarts the key's TTL: its whole TTL.
		t.Remaining = 0
		ttls[k] = t
	}
	st, ok := src.(kv.Streamer)
	if !ok {
		return fmt.Errorf("copy --follow: the source cannot stream changes: %w", kv.ErrCallNotSupported)
	}
	_, _ = fmt.Fprintf(a.stderr, "following changes from revision %d; interrupt to stop\n", rev)
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
				if ctx.Err() == nil {
					_, _ = fmt.Fprintf(a.stderr, "the source's stream ended (%v): copying again from a new snapshot\n", b.Err)
				}
				break
			}
			for _, ev := range b.Events {
				var err error
				if ev.Type == kv.EventPut {
					only := map[string]kv.KeyTTL{}
					if t, ok := ttls[ev.Pair.Key]; ok {
						only[ev.Pair.Key] = t
					}
					_, err = writeAll(ctx, dst, []*kv.KVPair{ev.Pair}, only, 1, nil)
				} else {
					delete(ttls, ev.Pair.Key) // a key put again later is a new one
					if err = dst.Delete(ctx, ev.Pair.Key); errors.Is(err, kv.ErrKeyNotFound) {
						err = nil
					}
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
		// The stream ended with an error (history compacted, the source
		// unreachable): copy again from a new snapshot, after a pause so
		// that a source that keeps failing is not read in a loop.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followRetry):
		}
		pairs, srev, srcTTLs, err := readSource(ctx, src, prefix)
		if err == nil {
			for k, t := range srcTTLs {
				t.Remaining = 0
				srcTTLs[k] = t
			}
			ttls = srcTTLs
			err = a.level(ctx, dst, prefix, pairs, ttls, prune)
		}
		if ctx.Err() != nil {
			return nil // interrupted: what was applied stays
		}
		if err != nil {
			return fmt.Errorf("copy --follow: copy again: %w", err)
		}
		_, _ = fmt.Fprintf(a.stderr, "copied again from revision %d (%d keys in the source)\n", srev, len(pairs))
		rev = srev
	}
}

// level writes to dst what differs from the source's pairs, and with
// prune deletes what only dst has.
func (a *app) level(ctx context.Context, dst kv.Store, prefix string, pairs []*kv.KVPair, ttls map[string]kv.KeyTTL, prune bool) error {
	have, _, err := readAll(ctx, dst, prefix)
	if err != nil {
		return err
	}
	dstTTLs, err := ttlsOf(ctx, dst, prefix)
	if err != nil {
		return err
	}
	pl := makePlan(pairs, have, ttls, dstTTLs)
	if _, err := writeAll(ctx, dst, append(pl.create, pl.update...), ttls, 16, nil); err != nil {
		return err
	}
	if !prune {
		return nil
	}
	return deleteAll(ctx, dst, pl.extra, 16, nil)
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
			ctx := cmd.Context()
			octx, cancel := a.oneShot(ctx) // the connections; the reads take what a big tree takes
			defer cancel()
			src, err := a.open(octx, args[0])
			if err != nil {
				return err
			}
			defer func() { _ = src.Close() }()
			dst, err := a.open(octx, args[1])
			if err != nil {
				return err
			}
			defer func() { _ = dst.Close() }()
			srcName, dstName := kvurl.Redacted(args[0]), kvurl.Redacted(args[1])
			left, _, err := readAll(ctx, src, prefix)
			if err != nil {
				return fmt.Errorf("diff: read %s: %w", srcName, err)
			}
			right, _, err := readAll(ctx, dst, prefix)
			if err != nil {
				return fmt.Errorf("diff: read %s: %w", dstName, err)
			}
			leftTTLs, err := ttlsOf(ctx, src, prefix)
			if err != nil {
				return fmt.Errorf("diff: read %s: %w", srcName, err)
			}
			rightTTLs, err := ttlsOf(ctx, dst, prefix)
			if err != nil {
				return fmt.Errorf("diff: read %s: %w", dstName, err)
			}
			pl := makePlan(left, right, leftTTLs, rightTTLs)
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
					line := mark + " " + e.Key
					if !keysOnly {
						line += " (" + e.What + ")"
					}
					if _, err := fmt.Fprintln(a.stdout, line); err != nil {
						return err
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
