package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvurl"
	"github.com/regentkv/regent/kv/memory"
)

// env is what a run sees of its process: tests pass their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// memory shares memory stores between the URLs of one run (and, in
	// tests, between runs): "memory://name".
	memory map[string]*memory.Backend
}

// app is one run's settings.
type app struct {
	env
	store   string
	output  string
	timeout time.Duration
	opts    kvurl.Options
}

// run executes one command line and returns its exit status.
func run(ctx context.Context, args []string, e *env) int {
	if e.memory == nil {
		e.memory = map[string]*memory.Backend{}
	}
	a := &app{env: *e}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		_, _ = fmt.Fprintf(e.stderr, "regent: %v\n", err)
	}
	return exitCode(err)
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "regent",
		Short: "Read, follow, copy and compare regent's stores: etcd, Consul, ZooKeeper",
		Long: `regent works on any store regent runs on, named by a URL:

  etcd://host:2379,host2:2379/root      etcd://user:password@host:2379
  consul://host:8500/root?dc=east       consul://token@host:8500
  zookeeper://host:2181,host2:2181/root zookeeper://user:password@host:2181
  memory:                               (a store of its own, for trials)

The store comes from --store or REGENT_STORE; every flag below also reads
REGENT_<FLAG> (REGENT_CACERT, REGENT_TOKEN, ...) when not given.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// The global flags only: REGENT_PREFIX must not turn a del
			// into a tree delete, nor REGENT_PRUNE make every copy prune.
			return a.fromEnvironment(cmd.Root().PersistentFlags())
		},
	}
	f := root.PersistentFlags()
	f.StringVarP(&a.store, "store", "s", "", "store URL (REGENT_STORE)")
	f.StringVarP(&a.output, "output", "o", "table", "output: table or json")
	f.DurationVar(&a.timeout, "timeout", 10*time.Second, "bound of a one-shot command (watch and copy --follow run until interrupted)")
	f.DurationVar(&a.opts.DialTimeout, "dial-timeout", 0, "bound of the first contact (driver default when 0)")
	f.StringVar(&a.opts.User, "user", "", "etcd user or ZooKeeper digest identity; user:password")
	f.StringVar(&a.opts.Password, "password", "", "password of --user")
	f.StringVar(&a.opts.Token, "token", "", "Consul ACL token")
	f.StringVar(&a.opts.CACert, "cacert", "", "PEM file of the CA that signs the servers' certificates (turns TLS on)")
	f.StringVar(&a.opts.Cert, "cert", "", "PEM file of the client certificate")
	f.StringVar(&a.opts.Key, "key", "", "PEM file of the client key")
	f.BoolVar(&a.opts.InsecureSkipVerify, "insecure-skip-tls-verify", false, "skip the servers' certificate check (tests only)")
	root.AddCommand(a.getCmd(), a.putCmd(), a.delCmd(), a.lsCmd(), a.watchCmd(), a.casCmd(),
		a.leaderCmd(), a.lockCmd(), a.copyCmd(), a.diffCmd(), a.benchCmd())
	root.SetHelpCommand(&cobra.Command{Use: "no-help", Hidden: true})
	root.AddCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command (help exit-codes: the exit statuses)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] == "exit-codes" {
				_, err := io.WriteString(cmd.OutOrStdout(), exitCodesHelp)
				return err
			}
			c, _, err := root.Find(args)
			if err != nil || c == nil {
				return &statusError{code: exitUsage, err: fmt.Errorf("unknown help topic %q", strings.Join(args, " "))}
			}
			return c.Help()
		},
	})
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &statusError{code: exitUsage, err: err}
	})
	wrapArgs(root)
	return root
}

// wrapArgs makes every command's argument errors usage errors (exit 2),
// and a command that only groups others ("regent", "regent lock") refuse
// an unknown subcommand instead of printing its help and exiting 0.
func wrapArgs(c *cobra.Command) {
	if c.Run == nil && c.RunE == nil && c.HasSubCommands() {
		c.Args = cobra.NoArgs
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return &statusError{code: exitUsage, err: fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// fromEnvironment fills every global flag not given from REGENT_<NAME>.
func (a *app) fromEnvironment(flags *pflag.FlagSet) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil || f.Name == "help" {
			return
		}
		name := "REGENT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := a.getenv(name); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = &statusError{code: exitUsage, err: fmt.Errorf("%s=%q: %w", name, v, e)}
			}
		}
	})
	if err != nil {
		return err
	}
	if u, p, ok := strings.Cut(a.opts.User, ":"); ok && a.opts.Password == "" {
		a.opts.User, a.opts.Password = u, p
	}
	if a.output != "table" && a.output != "json" {
		return &statusError{code: exitUsage, err: fmt.Errorf("--output %q: want table or json", a.output)}
	}
	return nil
}

// open opens the store at raw (the --store one when raw is empty).
func (a *app) open(ctx context.Context, raw string) (kv.Store, error) {
	if raw == "" {
		raw = a.store
	}
	if raw == "" {
		return nil, &statusError{code: exitUsage, err: fmt.Errorf("no store: give --store URL or set REGENT_STORE (etcd://host:2379, consul://host:8500, zookeeper://host:2181, memory:)")}
	}
	t, err := kvurl.Parse(raw)
	if err != nil {
		return nil, err
	}
	opts := a.opts
	opts.Memory = a.memory
	if t.Backend == kvurl.Memory {
		if _, ok := a.memory[t.Name]; !ok {
			a.memory[t.Name] = memory.NewBackend()
		}
	}
	s, err := t.Open(ctx, &opts)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", kvurl.Redacted(raw), err)
	}
	return s, nil
}

// oneShot bounds a one-shot command by --timeout.
func (a *app) oneShot(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, a.timeout)
}

// withStore runs fn on the --store store, within --timeout.
func (a *app) withStore(cmd *cobra.Command, fn func(ctx context.Context, s kv.Store) error) error {
	ctx, cancel := a.oneShot(cmd.Context())
	defer cancel()
	s, err := a.open(ctx, "")
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	return fn(ctx, s)
}

// following runs fn on the --store store until fn returns or the command
// is interrupted: without --timeout, as a watch lasts.
func (a *app) following(cmd *cobra.Command, fn func(ctx context.Context, s kv.Store) error) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	s, err := a.open(ctx, "")
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	return fn(ctx, s)
}

// pairJSON is a pair as -o json prints it: the value as text when it is
// UTF-8, in base64 otherwise.
type pairJSON struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ValueBase64 []byte `json:"value_base64,omitempty"`
	LastIndex   uint64 `json:"last_index"`
	Revision    uint64 `json:"revision,omitempty"`
}

func toJSON(p *kv.KVPair) pairJSON {
	j := pairJSON{Key: p.Key, LastIndex: p.LastIndex, Revision: p.Revision}
	if utf8.Valid(p.Value) {
		j.Value = string(p.Value)
	} else {
		j.ValueBase64 = p.Value
	}
	return j
}

// printable is a value for a table cell: text as is (one line), other
// bytes as a Go-quoted string.
func printable(v []byte) string {
	if utf8.Valid(v) && !strings.ContainsAny(string(v), "\n\t\r") {
		return string(v)
	}
	return fmt.Sprintf("%q", v)
}

func (a *app) json(v any) error {
	enc := json.NewEncoder(a.stdout)
	return enc.Encode(v)
}

// table prints rows under a header, aligned.
func (a *app) table(header []string, rows [][]string) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	// tabwriter buffers until Flush, which reports any write error.
	_, _ = fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, r := range rows {
		_, _ = fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}

func usage(format string, args ...any) error {
	return &statusError{code: exitUsage, err: fmt.Errorf(format, args...)}
}
