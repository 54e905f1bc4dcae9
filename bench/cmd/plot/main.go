package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// family is one results file and how to chart it.
type family struct {
	name    string // results/<name>.txt -> <out>/<name>.svg
	bench   string // the benchmark function the file holds
	title   string
	command string // how results/<name>.txt was made, from bench/
	note    string // what one run's figure is, for the caption
	labels  map[string]string
	panels  []PanelSpec
}

var families = []family{
	{
		name:    "etcd",
		bench:   "BenchmarkEtcdPaired",
		title:   "etcd: regent kv/etcd vs raw clientv3 (embedded etcd 3.6.16, loopback)",
		command: "go test -run '^$' -bench BenchmarkEtcdPaired -count 3 .",
		note:    "a run's figure is each side's mean over one loop that alternates regent and raw call by call",
		labels:  map[string]string{"regent": "regent kv/etcd", "raw": "raw clientv3 v3.6.16"},
		panels:  []PanelSpec{{Title: "Time per operation (List100: 100 keys; WatchLatency: Put by a writer -> event received)", Metric: "ns/op"}},
	},
	{
		name:    "zookeeper",
		bench:   "BenchmarkZookeeperPaired",
		title:   "ZooKeeper: regent kv/zookeeper vs raw go-zookeeper/zk (ZooKeeper 3.8, loopback)",
		command: "go test -run '^$' -bench BenchmarkZookeeperPaired -count 3 .",
		note:    "a run's figure is each side's mean over one loop that alternates regent and raw call by call",
		labels:  map[string]string{"regent": "regent kv/zookeeper", "raw": "raw go-zookeeper/zk v1.0.4"},
		panels:  []PanelSpec{{Title: "Time per operation (List100: 100 znodes; WatchLatency: Set by a writer -> value received)", Metric: "ns/op"}},
	},
	{
		name:    "consul",
		bench:   "BenchmarkConsulPaired",
		title:   "Consul: regent kv/consul vs raw consul/api (Consul 1.14.0 agent -dev, loopback)",
		command: "go test -run '^$' -bench BenchmarkConsulPaired -benchtime 2000x -count 3 .",
		note:    "a run's figure is each side's median over 2000 back-to-back pairs",
		labels:  map[string]string{"regent": "regent kv/consul", "raw": "raw consul/api v1.34.5"},
		panels:  []PanelSpec{{Title: "Time per operation (List100: 100 keys; WatchLatency: Put -> blocking query returns it)", Metric: "ns/op"}},
	},
	{
		name:    "queue",
		bench:   "BenchmarkQueue",
		title:   "workqueue: regent workqueue.Queue vs client-go util/workqueue (same interface, same loops)",
		command: "go test -run '^$' -bench BenchmarkQueue -benchmem -count 5 .",
		labels:  map[string]string{"regent": "regent workqueue", "clientgo": "client-go v0.37.2 workqueue"},
		panels: []PanelSpec{
			{Title: "Time per item (Parallel8: 1 producer, 8 workers; AddAfter: 1 µs delay)", Metric: "ns/op"},
			{Title: "Allocations per item", Metric: "allocs/op"},
		},
	},
	{
		name:    "election",
		bench:   "BenchmarkElection",
		title:   "Leader election: regent election per backend vs each backend's raw recipe (TTL 4 s)",
		command: "go test -run '^$' -bench 'BenchmarkElection/.*/handover' -benchtime 20x -count 3 . && go test -run '^$' -bench 'BenchmarkElection/.*/failover' -benchtime 5x .",
		note:    "a run's figure is the median of its 20 handovers or 5 failovers",
		labels:  map[string]string{"regent": "regent election", "raw": "raw recipe: etcd concurrency.Election, Consul api.Lock, go-zookeeper zk.Lock"},
		panels: []PanelSpec{
			{Title: "Handover: leader resigns -> next leader starts", Metric: "ms/handover"},
			{Title: "Failover: leader's connection cut -> next leader starts (bounded by the TTL)", Metric: "ms/failover"},
		},
	},
	{
		name:    "priority",
		bench:   "BenchmarkPriority",
		title:   "Priority: regent workqueue and controller vs controller-runtime v0.24.1's priority queue, and a FIFO",
		command: "go test -run '^$' -bench 'BenchmarkPriority/queue' -count 6 . && go test -run '^$' -bench 'BenchmarkPriority/failover' -benchtime 3x .",
		note:    "failover: a run's figure is the median of its 3 terms",
		labels: map[string]string{"regent": "regent", "controller-runtime": "controller-runtime priorityqueue",
			"fifo": "FIFO queue (no priorities)"},
		panels: []PanelSpec{
			{Title: "Queue: add a live and a low item, take both, over a 10,000-item low backlog", Metric: "ns/op", Match: "/queue"},
			{Title: "Failover, 100,000 cached keys, 1 ms reconcile, 8 workers: live change -> reconciled", Metric: "ms/live"},
		},
	},
	{
		name:    "watches",
		bench:   "BenchmarkWatches",
		title:   "10,000 watches: n Watches on one regent Store per backend (servers in processes of their own)",
		command: "go test -run '^$' -bench BenchmarkWatches -benchtime 1x -count 2 -timeout 30m .",
		note:    "a run's figure is one round: open n watches, then 200 changes a second for 3 s",
		panels: []PanelSpec{
			{Title: "Client memory per watch, heap + goroutine stacks, bytes (goal: under 4,096)", Metric: "mem-B/watch"},
			{Title: "Put -> delivery on the key's watch, p50 (Consul at 10,000: every answer lists the directory)", Metric: "change-p50-µs"},
		},
	},
	{
		name:    "crowd",
		bench:   "BenchmarkElectionCrowd",
		title:   "Crowds: n candidates on one election key, sharing 4 Stores",
		command: "go test -run '^$' -bench BenchmarkElectionCrowd -benchtime 20x -count 2 -timeout 30m .",
		note:    "a run's figure is the median of its 20 handovers",
		panels: []PanelSpec{
			{Title: "Handover: leader resigns -> next leader starts (goal: 1,000 within 2x of 3)", Metric: "ms/handover"},
			{Title: "Server requests per handover, background taken off (ZooKeeper: packets received; Consul: requests sent)", Metric: "requests/handover"},
		},
	},
	{
		name:    "sync1m",
		bench:   "BenchmarkInformer",
		title:   "An informer of 1,000,000 keys (100-byte values) on etcd vs one unpaged raw read",
		command: "go test -run '^$' -bench 'BenchmarkInformer/etcd/Sync1M' -benchtime 1x -count 3 -timeout 30m .",
		labels:  map[string]string{"regent": "regent informer", "raw": "raw clientv3, one read into a map"},
		panels: []PanelSpec{
			{Title: "Sync: the whole prefix in memory", Metric: "ns/op"},
			{Title: "Live heap per object after sync, bytes (each value is 100)", Metric: "heap-B/obj"},
		},
	},
	{
		name:    "informer",
		bench:   "BenchmarkInformer",
		title:   "Informer: regent informer vs a raw list + watch per backend (1 KiB values)",
		command: "go test -run '^$' -bench BenchmarkInformer -benchmem -count 3 .",
		labels: map[string]string{"regent": "regent informer", "raw": "raw client list / watch",
			"rawwatch": "raw list + the watches to follow it (ZooKeeper)"},
		panels: []PanelSpec{
			{Title: "Initial sync: list the prefix into memory (100k keys on etcd, 10k on the others)", Metric: "ns/op", Match: "/Sync"},
			{Title: "Live heap per object after sync, in bytes (each value is 1,024)", Metric: "heap-B/obj"},
			{Title: "Latency, Put -> handler or watcher, p50 (ChangeIn: one key of the big prefix)", Metric: "p50-µs"},
		},
	},
}

func main() {
	in := flag.String("in", "results", "directory of the `go test -bench` outputs, <family>.txt")
	out := flag.String("out", "../docs/img", "directory the SVG charts are written to")
	flag.Parse()
	if err := run(*in, *out, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

// run draws every family whose results exist. Malformed lines are reported
// and skipped; a family with no results at all, or an unwritable output,
// fails the run.
func run(in, out string, log io.Writer) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, fam := range families {
		src := filepath.Join(in, fam.name+".txt")
		dst := filepath.Join(out, fam.name+".svg")
		raw, err := os.ReadFile(src)
		if errors.Is(err, fs.ErrNotExist) {
			say(log, "plot: %s missing, %s not drawn (make it: cd bench && %s | tee results/%s.txt)\n", src, dst, fam.command, fam.name)
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := draw(fam, raw, dst, log); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		say(log, "plot: %s -> %s\n", src, dst)
	}
	return errors.Join(errs...)
}

func draw(fam family, raw []byte, dst string, log io.Writer) error {
	f, perr := Parse(bytes.NewReader(raw))
	if perr != nil {
		// Keep the good lines: one garbled line should not cost the chart.
		say(log, "plot: %s: skipped: %v\n", fam.name, perr)
	}
	panels, err := Build(f, fam.bench, fam.panels)
	if err != nil {
		return err
	}
	c := Chart{
		Title:   fam.title,
		Command: "cd bench && " + fam.command,
		Caption: caption(f, fam, panels),
		Labels:  fam.labels,
		Panels:  panels,
	}
	if cmd := f.Config["command"]; cmd != "" {
		c.Command = cmd
	}
	var b bytes.Buffer
	if err := Render(&b, c); err != nil {
		return err
	}
	return os.WriteFile(dst, b.Bytes(), 0o644)
}

func caption(f File, fam family, panels []Panel) []string {
	runs := 0
	for _, p := range panels {
		runs = max(runs, p.Runs())
	}
	summary := "one run"
	if runs > 1 {
		summary = fmt.Sprintf("bar: median of %d runs (-count), whisker: min to max", runs)
	}
	if cpu := f.Config["cpu"]; cpu != "" {
		summary = cpu + "; " + summary
	}
	lines := []string{summary}
	if fam.note != "" {
		lines = append(lines, fam.note)
	}
	ratios, paired := false, false
	for _, p := range panels {
		ratios = ratios || slices.ContainsFunc(p.Groups, func(g Group) bool { return slices.ContainsFunc(g.Ratios, func(r string) bool { return r != "" }) })
		paired = paired || slices.ContainsFunc(p.Groups, func(g Group) bool { return g.Paired })
	}
	switch {
	case paired:
		lines = append(lines, "regent/x under a label: regent's figure over the other's, below 1 when regent's is lower; "+
			"the median (min-max) of the ratios each paired loop measured")
	case ratios:
		lines = append(lines, "regent/x under a label: regent's median over the other's, below 1 when regent's is lower")
	}
	return lines
}

// say writes a progress line; a log that cannot be written is no reason to
// stop drawing.
func say(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}
