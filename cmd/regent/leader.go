package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/kv"
)

type leaderJSON struct {
	Key      string    `json:"key"`
	Identity string    `json:"identity"`
	Token    uint64    `json:"token"`
	Since    time.Time `json:"since,omitzero"`
	Leading  bool      `json:"leading"`
}

func (a *app) printLeader(key string, l election.Leader) error {
	j := leaderJSON{Key: key, Identity: l.Identity, Token: l.Token, Since: l.Since, Leading: l.Identity != ""}
	if a.output == "json" {
		return a.json(j)
	}
	if !j.Leading {
		_, err := fmt.Fprintf(a.stdout, "%s: no leader\n", key)
		return err
	}
	return a.table([]string{"ELECTION", "LEADER", "TOKEN", "SINCE", "FOR"}, [][]string{{
		key, l.Identity, strconv.FormatUint(l.Token, 10), l.Since.Format(time.RFC3339Nano), time.Since(l.Since).Round(time.Millisecond).String(),
	}})
}

func (a *app) leaderCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "leader KEY",
		Short: "Show who leads the election at KEY, since when, with which fencing token (exit 3: nobody)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd, func(ctx context.Context, s kv.Store) error {
				l, err := election.LeaderOf(ctx, s, args[0])
				if err != nil {
					if a.output == "json" && errors.Is(err, election.ErrNoLeader) {
						_ = a.printLeader(args[0], election.Leader{})
					}
					return fmt.Errorf("leader %q: %w", args[0], err)
				}
				return a.printLeader(args[0], l)
			})
		},
	}
	var count int
	w := &cobra.Command{
		Use:   "watch KEY",
		Short: "Print the leader of the election at KEY and every change of it until interrupted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.following(cmd, func(ctx context.Context, s kv.Store) error {
				obs, err := election.Observe(ctx, s, args[0])
				if err != nil {
					return fmt.Errorf("leader watch %q: %w", args[0], err)
				}
				printed := 0
				for o := range obs {
					if o.Err != nil {
						return fmt.Errorf("leader watch %q: %w", args[0], o.Err)
					}
					if err := a.printLeader(args[0], o.Leader); err != nil {
						return err
					}
					if printed++; count > 0 && printed >= count {
						return nil
					}
				}
				return nil
			})
		},
	}
	w.Flags().IntVar(&count, "count", 0, "stop after this many states (0: until interrupted)")
	c.AddCommand(w)
	return c
}
