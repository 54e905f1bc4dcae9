package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/regentkv/regent/kv"
)

type holderJSON struct {
	Value   string `json:"value"`
	Holding bool   `json:"holding"`
	Token   uint64 `json:"token,omitempty"`
	ID      string `json:"id"`
}

func (a *app) lockCmd() *cobra.Command {
	c := &cobra.Command{Use: "lock", Short: "Inspect locks"}
	c.AddCommand(&cobra.Command{
		Use:   "holders KEY",
		Short: "List who holds the lock at KEY and who waits for it, in order",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd, func(ctx context.Context, s kv.Store) error {
				in, ok := s.(kv.LockInspector)
				if !ok {
					return fmt.Errorf("lock holders: %w", kv.ErrCallNotSupported)
				}
				hs, err := in.LockHolders(ctx, args[0])
				if err != nil {
					return fmt.Errorf("lock holders %q: %w", args[0], err)
				}
				if a.output == "json" {
					out := make([]holderJSON, 0, len(hs))
					for _, h := range hs {
						out = append(out, holderJSON{Value: string(h.Value), Holding: h.Holding, Token: h.Token, ID: h.ID})
					}
					return a.json(out)
				}
				rows := make([][]string, 0, len(hs))
				for _, h := range hs {
					state, token := "waiting", ""
					if h.Holding {
						state = "holding"
						if h.Token != 0 {
							token = strconv.FormatUint(h.Token, 10)
						}
					}
					rows = append(rows, []string{state, printable(h.Value), token, h.ID})
				}
				if len(rows) == 0 {
					_, err := fmt.Fprintf(a.stdout, "%s: nobody holds or waits\n", args[0])
					return err
				}
				return a.table([]string{"STATE", "VALUE", "TOKEN", "ID"}, rows)
			})
		},
	})
	return c
}
