package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regentkv/regent/kv"
)

func (a *app) getCmd() *cobra.Command {
	var consistent bool
	c := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a key's value (exit 3 when it does not exist)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd, func(ctx context.Context, s kv.Store) error {
				p, err := s.Get(ctx, args[0], &kv.ReadOptions{Consistent: consistent})
				if err != nil {
					return fmt.Errorf("get %q: %w", args[0], err)
				}
				if a.output == "json" {
					return a.json(toJSON(p))
				}
				return a.table([]string{"KEY", "VALUE", "LAST-INDEX"}, [][]string{{p.Key, printable(p.Value), strconv.FormatUint(p.LastIndex, 10)}})
			})
		},
	}
	c.Flags().BoolVar(&consistent, "consistent", false, "a linearizable read where the backend's default may be stale")
	return c
}

// valueArg is VALUE, or standard input when it is "-".
func (a *app) valueArg(v string) ([]byte, error) {
	if v != "-" {
		return []byte(v), nil
	}
	b, err := io.ReadAll(a.stdin)
	if err != nil {
		return nil, fmt.Errorf("read the value from standard input: %w", err)
	}
	return b, nil
}

func (a *app) putCmd() *cobra.Command {
	var o kv.WriteOptions
	c := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Write a key (VALUE - reads standard input); --ttl makes it expire",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := a.valueArg(args[1])
			if err != nil {
				return err
			}
			return a.withStore(cmd, func(ctx context.Context, s kv.Store) error {
				if err := s.Put(ctx, args[0], v, &o); err != nil {
					return fmt.Errorf("put %q: %w", args[0], err)
				}
				return a.done(map[string]any{"key": args[0], "written": true})
			})
		},
	}
	c.Flags().DurationVar(&o.TTL, "ttl", 0, "expire the key after this long (the backend's minimum applies)")
	return c
}

// done reports a write that succeeded: silent in a table, an object in
// JSON.
func (a *app) done(v map[string]any) error {
	if a.output == "json" {
		return a.json(v)
	}
	return nil
}

func (a *app) delCmd() *cobra.Command {
	var prefix bool
	c := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete a key (exit 3 when it does not exist), or every key below a prefix",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd, func(ctx context.Context, s kv.Store) error {
				if prefix {
					if err := s.DeleteTree(ctx, args[0]); err != nil {
						return fmt.Errorf("del --prefix %q: %w", args[0], err)
					}
				} else if err := s.Delete(ctx, args[0]); err != nil {
					return fmt.Errorf("del %q: %w", args[0], err)
				}
				return a.done(map[string]any{"key": args[0], "deleted": true})
			})
		},
	}
	c.Flags().BoolVar(&prefix, "prefix", false, "delete every key below KEY, taken as a prefix")
	return c
}

func (a *app) lsCmd() *cobra.Command {
	var tree, keysOnly, consistent bool
	c := &cobra.Command{
		Use:   "ls [PREFIX]",
		Short: "List the keys below a prefix (all keys without one), flat or as a tree",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			return a.withStore(cmd, func(ctx context.Context, s kv.Store) error {
				pairs, err := s.List(ctx, prefix, &kv.ReadOptions{Consistent: consistent})
				if err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
					return fmt.Errorf("ls %q: %w", prefix, err)
				}
				sort.Slice(pairs, func(i, j int) bool { return pairs[i].Key < pairs[j].Key })
				switch {
				case a.output == "json":
					out := make([]pairJSON, 0, len(pairs))
					for _, p := range pairs {
						j := toJSON(p)
						if keysOnly {
							j.Value, j.ValueBase64 = "", nil
						}
						out = append(out, j)
					}
					return a.json(out)
				case tree:
					return a.printTree(prefix, pairs, keysOnly)
				case keysOnly:
					for _, p := range pairs {
						if _, err := fmt.Fprintln(a.stdout, p.Key); err != nil {
							return err
						}
					}
					return nil
				}
				rows := make([][]string, 0, len(pairs))
				for _, p := range pairs {
					rows = append(rows, []string{p.Key, printable(p.Value), strconv.FormatUint(p.LastIndex, 10)})
				}
				return a.table([]string{"KEY", "VALUE", "LAST-INDEX"}, rows)
			})
		},
	}
	c.Flags().BoolVar(&tree, "tree", false, "print the keys as a tree of their segments")
	c.Flags().BoolVar(&keysOnly, "keys-only", false, "print keys without values")
	c.Flags().BoolVar(&consistent, "consistent", false, "a linearizable read where the backend's default may be stale")
	return c
}

// printTree prints sorted pairs as a tree of key segments below prefix.
func (a *app) printTree(prefix string, pairs []*kv.KVPair, keysOnly bool) error {
	var b strings.Builder
	base := strings.Trim(prefix, "/")
	if base == "" {
		b.WriteString("/\n")
	} else {
		b.WriteString(base + "/\n")
	}
	var last []string // directory segments of the previous key
	for _, p := range pairs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.Key, base), "/")
		segs := strings.Split(rel, "/")
		common := 0
		for common < len(last) && common < len(segs)-1 && last[common] == segs[common] {
			common++
		}
		for d := common; d < len(segs); d++ {
			b.WriteString(strings.Repeat("  ", d+1) + segs[d])
			if d < len(segs)-1 {
				b.WriteString("/")
			} else if !keysOnly {
				b.WriteString(" = " + printable(p.Value))
			}
			b.WriteString("\n")
		}
		last = segs[:len(segs)-1]
	}
	_, err := io.WriteString(a.stdout, b.String())
	return err
}

func (a *app) casCmd() *cobra.Command {
	var prevValue string
	var prevIndex uint64
	var absent bool
	var o kv.WriteOptions
	c := &cobra.Command{
		Use:   "cas KEY VALUE (--prev-value V | --prev-index N | --absent)",
		Short: "Write a key only if it still holds what you expect (exit 4 when it does not)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			given := 0
			for _, f := range []string{"prev-value", "prev-index", "absent"} {
				if cmd.Flags().Changed(f) {
					given++
				}
			}
			if given != 1 {
				return usage("cas: give exactly one of --prev-value, --prev-index, --absent")
			}
			v, err := a.valueArg(args[1])
			if err != nil {
				return err
			}
			return a.withStore(cmd, func(ctx context.Context, s kv.Store) error {
				var prev *kv.KVPair
				if !absent {
					cur, err := s.Get(ctx, args[0], &kv.ReadOptions{Consistent: true})
					if err != nil {
						return fmt.Errorf("cas %q: %w", args[0], err)
					}
					if cmd.Flags().Changed("prev-value") && string(cur.Value) != prevValue {
						return withStatus(exitConflict, "cas %q: the key holds %s, not %s", args[0], printable(cur.Value), printable([]byte(prevValue)))
					}
					if cmd.Flags().Changed("prev-index") && cur.LastIndex != prevIndex {
						return withStatus(exitConflict, "cas %q: the key is at last index %d, not %d", args[0], cur.LastIndex, prevIndex)
					}
					prev = cur
				}
				ok, p, err := s.AtomicPut(ctx, args[0], v, prev, &o)
				if err != nil && !errors.Is(err, kv.ErrKeyModified) && !errors.Is(err, kv.ErrKeyExists) {
					return fmt.Errorf("cas %q: %w", args[0], err)
				}
				if !ok || err != nil {
					return withStatus(exitConflict, "cas %q: the key changed meanwhile (or exists): nothing written", args[0])
				}
				if a.output == "json" {
					return a.json(toJSON(p))
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&prevValue, "prev-value", "", "write only if the key holds this value")
	c.Flags().Uint64Var(&prevIndex, "prev-index", 0, "write only if the key is at this last index (get -o json shows it)")
	c.Flags().BoolVar(&absent, "absent", false, "write only if the key does not exist")
	c.Flags().DurationVar(&o.TTL, "ttl", 0, "expire the key after this long")
	return c
}
