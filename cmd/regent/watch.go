package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/regentkv/regent/kv"
)

// change is one printed line of watch.
type change struct {
	Type string `json:"type"` // PUT, DELETE, or ABSENT (a watched key's first state)
	pairJSON
}

func (a *app) printChange(c change) error {
	if a.output == "json" {
		return a.json(c)
	}
	line := c.Type + " " + c.Key
	if c.Type == "PUT" {
		v := c.Value
		if c.ValueBase64 != nil {
			v = printable(c.ValueBase64)
		}
		line += " " + v + " (last index " + strconv.FormatUint(c.LastIndex, 10) + ")"
	}
	_, err := fmt.Fprintln(a.stdout, line)
	return err
}

func (a *app) watchCmd() *cobra.Command {
	var prefix bool
	var count int
	c := &cobra.Command{
		Use:   "watch KEY",
		Short: "Print a key's state and every change to it (--prefix: every change below a prefix) until interrupted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.following(cmd, func(ctx context.Context, s kv.Store) error {
				printed := 0
				enough := func() bool { printed++; return count > 0 && printed >= count }
				if prefix {
					return a.watchPrefix(ctx, s, args[0], enough)
				}
				updates, err := s.Watch(ctx, args[0], nil)
				if err != nil {
					return fmt.Errorf("watch %q: %w", args[0], err)
				}
				for u := range updates {
					if u.Err != nil {
						return fmt.Errorf("watch %q: %w", args[0], u.Err)
					}
					c := change{Type: "ABSENT", pairJSON: pairJSON{Key: u.Key}}
					if u.Pair != nil {
						c = change{Type: "PUT", pairJSON: toJSON(u.Pair)}
					} else if printed > 0 {
						c.Type = "DELETE"
					}
					if err := a.printChange(c); err != nil {
						return err
					}
					if enough() {
						return nil
					}
				}
				return nil // interrupted
			})
		},
	}
	c.Flags().BoolVar(&prefix, "prefix", false, "follow every key below KEY, taken as a prefix (changes only, from now on)")
	c.Flags().IntVar(&count, "count", 0, "stop after this many lines (0: until interrupted)")
	return c
}

func (a *app) watchPrefix(ctx context.Context, s kv.Store, prefix string, enough func() bool) error {
	st, ok := s.(kv.Streamer)
	if !ok {
		return fmt.Errorf("watch --prefix: %w", kv.ErrCallNotSupported)
	}
	rev, err := st.Revision(ctx)
	if err != nil {
		return fmt.Errorf("watch --prefix %q: %w", prefix, err)
	}
	batches, err := st.Events(ctx, prefix, rev)
	if err != nil {
		return fmt.Errorf("watch --prefix %q: %w", prefix, err)
	}
	for b := range batches {
		if b.Err != nil {
			if ctx.Err() != nil && errors.Is(b.Err, ctx.Err()) {
				return nil
			}
			return fmt.Errorf("watch --prefix %q: %w", prefix, b.Err)
		}
		for _, ev := range b.Events {
			c := change{Type: ev.Type.String(), pairJSON: toJSON(ev.Pair)}
			if ev.Type == kv.EventDelete {
				c.Value, c.ValueBase64, c.LastIndex = "", nil, 0
			}
			if err := a.printChange(c); err != nil {
				return err
			}
			if enough() {
				return nil
			}
		}
	}
	return nil
}
