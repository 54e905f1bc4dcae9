package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t *testing.T, in string) File {
	t.Helper()
	f, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func TestBuildSubBenchmarks(t *testing.T) {
	f := mustParse(t, `
BenchmarkQueue/Add/regent-2 1 100 ns/op 0 allocs/op
BenchmarkQueue/Add/regent-2 1 300 ns/op 0 allocs/op
BenchmarkQueue/Add/clientgo-2 1 400 ns/op 1 allocs/op
BenchmarkQueue/Add/clientgo-2 1 200 ns/op 1 allocs/op
BenchmarkQueue/Add/regent-2 1 200 ns/op 0 allocs/op
BenchmarkQueue/Add/clientgo-2 1 900 ns/op 1 allocs/op
BenchmarkQueue/Add/clientgo-2 1 500 ns/op 1 allocs/op
BenchmarkQueueOther/Add/regent-2 1 1 ns/op
BenchmarkQueue-2 1 5 B/op
`)
	panels, err := Build(f, "BenchmarkQueue", []PanelSpec{{Metric: "ns/op"}, {Metric: "allocs/op"}, {Metric: "B/op"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(panels) != 3 {
		t.Fatalf("got %d panels, want 3", len(panels))
	}
	if g := panels[2].Groups; len(g) != 1 || g[0].Label != "Queue" || g[0].Bars[0].Median != 5 {
		t.Errorf("B/op groups = %+v, want the benchmark itself, named Queue", g)
	}
	want := Group{Label: "Add", Ratios: []string{"regent/clientgo 0.44"}, Bars: []Bar{
		{Side: "regent", Median: 200, Min: 100, Max: 300, Runs: 3},
		{Side: "clientgo", Median: 450, Min: 200, Max: 900, Runs: 4},
	}}
	if got := panels[0].Groups; !reflect.DeepEqual(got, []Group{want}) { // Paired false: a ratio of medians
		t.Errorf("ns/op groups:\n got %+v\nwant %+v", got, []Group{want})
	}
	if g := panels[1].Groups[0]; g.Ratios[0] != "" || g.Bars[0].Median != 0 || g.Bars[1].Median != 1 {
		t.Errorf("allocs/op group = %+v, want 0 vs 1 and no ratio", g)
	}
	if n := panels[0].Runs(); n != 4 {
		t.Errorf("Runs = %d, want 4", n)
	}
}

func TestBuildPaired(t *testing.T) {
	f := mustParse(t, `
BenchmarkEtcdPaired/Get-2 10 300 ns/op 140 raw-ns/op 150 regent-ns/op 1.07 regent/raw 38976 B/op
BenchmarkEtcdPaired/Get-2 10 300 ns/op 160 raw-ns/op 150 regent-ns/op 0.94 regent/raw 38976 B/op
BenchmarkEtcdPaired/Get-2 10 300 ns/op 150 raw-ns/op 151 regent-ns/op 1.01 regent/raw 38976 B/op
`)
	panels, err := Build(f, "BenchmarkEtcdPaired", []PanelSpec{{Metric: "ns/op"}})
	if err != nil {
		t.Fatal(err)
	}
	g := panels[0].Groups
	if len(g) != 1 || len(g[0].Bars) != 2 {
		t.Fatalf("groups = %+v, want Get with a regent and a raw bar (the pair's ns/op is no side)", g)
	}
	if b := g[0].Bars; b[0].Side != "regent" || b[0].Median != 150 || b[1].Side != "raw" || b[1].Median != 150 {
		t.Errorf("bars = %+v", b)
	}
	if !g[0].Paired {
		t.Error("Paired = false for ratios the loops measured")
	}
	if want := "regent/raw 1.01 (0.94-1.07)"; g[0].Ratios[0] != want {
		t.Errorf("ratio = %q, want %q (the loops' own ratios, not the medians')", g[0].Ratios[0], want)
	}
}

func TestBuildMatchAndSideInTheMiddle(t *testing.T) {
	f := mustParse(t, `
BenchmarkInformer/etcd/Sync100k/regent-2 1 1200000000 ns/op 1148 heap-B/obj
BenchmarkInformer/etcd/Sync100k/raw-2 1 890000000 ns/op 1111 heap-B/obj
BenchmarkInformer/etcd/EventLatency/regent-2 100 700000 ns/op 677 p50-µs
BenchmarkElection/etcd/handover/regent-2 5 3.2 ms/handover
`)
	panels, err := Build(f, "BenchmarkInformer", []PanelSpec{{Metric: "ns/op", Match: "/Sync"}, {Metric: "p50-µs"}})
	if err != nil {
		t.Fatal(err)
	}
	if l := panels[0].Groups; len(l) != 1 || l[0].Label != "etcd/Sync100k" {
		t.Errorf("sync panel groups = %+v, want etcd/Sync100k only", l)
	}
	if l := panels[1].Groups; len(l) != 1 || l[0].Label != "etcd/EventLatency" || l[0].Ratios != nil {
		t.Errorf("latency panel groups = %+v, want etcd/EventLatency with no ratio (no raw)", l)
	}
	if _, err := Build(f, "BenchmarkQueue", []PanelSpec{{Metric: "ns/op"}}); !errors.Is(err, errNoData) {
		t.Errorf("Build of an absent benchmark: %v, want errNoData", err)
	}
}

func TestBuildThreeSides(t *testing.T) {
	f := mustParse(t, `
BenchmarkInformer/zookeeper/Sync10k/regent-2 1 300 ns/op
BenchmarkInformer/zookeeper/Sync10k/raw-2 1 200 ns/op
BenchmarkInformer/zookeeper/Sync10k/rawwatch-2 1 250 ns/op
BenchmarkInformer/consul/Sync10k/raw-2 1 100 ns/op
`)
	panels, err := Build(f, "BenchmarkInformer", []PanelSpec{{Metric: "ns/op"}})
	if err != nil {
		t.Fatal(err)
	}
	g := panels[0].Groups
	if len(g) != 2 {
		t.Fatalf("groups = %+v, want zookeeper and consul", g)
	}
	if want := []string{"regent/raw 1.50", "regent/rawwatch 1.20"}; !reflect.DeepEqual(g[0].Ratios, want) {
		t.Errorf("zookeeper ratios = %q, want %q (one per other side, in bar order)", g[0].Ratios, want)
	}
	if g[1].Ratios != nil || g[1].Bars[0].Side != "raw" {
		t.Errorf("consul group = %+v, want a raw bar and no ratio (no regent)", g[1])
	}
}

func TestSplitSide(t *testing.T) {
	for _, tc := range []struct{ in, label, side string }{
		{"Put/regent", "Put", "regent"},
		{"etcd/handover/raw", "etcd/handover", "raw"},
		{"regent/Put", "Put", "regent"},
		{"AddAfter/clientgo", "AddAfter", "clientgo"},
		{"Put", "Put", ""},
		{"regentish/Put", "regentish/Put", ""},
	} {
		if l, s := splitSide(tc.in); l != tc.label || s != tc.side {
			t.Errorf("splitSide(%q) = %q, %q; want %q, %q", tc.in, l, s, tc.label, tc.side)
		}
	}
}
