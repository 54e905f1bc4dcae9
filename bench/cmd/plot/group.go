package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// errNoData marks a family whose results file holds nothing to plot.
var errNoData = errors.New("no results to plot")

// sides are the implementations the benchmarks compare, in the order their
// bars are drawn. A side is either a sub-benchmark name (Put/regent,
// Put/raw) or a prefix of a metric unit (regent-ns/op, raw-ns/op) when one
// paired loop measured both. rawwatch is a second raw baseline that does
// more of regent's work (a ZooKeeper list that also arms the watches);
// controller-runtime and fifo are the other queues of BenchmarkPriority.
var sides = []string{"regent", "raw", "rawwatch", "clientgo", "controller-runtime", "fifo"}

// PanelSpec says which figure of a family one panel shows.
type PanelSpec struct {
	Title  string // what the figure measures, in words
	Metric string // the unit as printed, without a side prefix: ns/op, ms/failover, p50-µs
	Match  string // keep only benchmarks whose name contains this ("" keeps all)
}

// Bar is one side of one comparison, summarised over the -count repeats.
type Bar struct {
	Side     string
	Median   float64
	Min, Max float64
	Runs     int
}

// Group is one operation, with a bar per side.
type Group struct {
	Label string
	Bars  []Bar
	// Ratios[i] compares regent with Bars[i+1] ("regent/raw 1.02
	// (0.99-1.05)"), "" where there is nothing to compare; nil unless
	// Bars[0] is regent.
	Ratios []string
	// Paired says the ratios are the ones the benchmark measured in loops
	// that ran both sides, not the ratio of the two medians.
	Paired bool
}

// Panel is one figure of a family: groups on one axis.
type Panel struct {
	Spec   PanelSpec
	Groups []Group
}

// Runs is the largest number of repeats behind any bar, for the caption.
func (p Panel) Runs() int {
	n := 0
	for _, g := range p.Groups {
		for _, b := range g.Bars {
			n = max(n, b.Runs)
		}
	}
	return n
}

// Build turns the results of the benchmark function bench into panels.
// Panels with nothing to show are left out; errNoData if none is left.
func Build(f File, bench string, specs []PanelSpec) ([]Panel, error) {
	var panels []Panel
	for _, spec := range specs {
		if p := buildPanel(f.Results, bench, spec); len(p.Groups) > 0 {
			panels = append(panels, p)
		}
	}
	if len(panels) == 0 {
		return nil, fmt.Errorf("%w: %s", errNoData, bench)
	}
	return panels, nil
}

type sample struct{ label, side string }

func buildPanel(results []Result, bench string, spec PanelSpec) Panel {
	values := map[sample][]float64{}
	ratios := map[sample][]float64{} // measured regent/x ratios, by label and x
	var labels []string
	add := func(label, side string, v float64) {
		if !slices.Contains(labels, label) {
			labels = append(labels, label)
		}
		k := sample{label, side}
		values[k] = append(values[k], v)
	}
	for _, r := range results {
		label, ok := strings.CutPrefix(r.Name, bench)
		if !ok || (label != "" && label[0] != '/') || !strings.Contains(r.Name, spec.Match) {
			continue
		}
		label = strings.TrimPrefix(label, "/")
		paired := false
		for _, m := range r.Metrics {
			for _, s := range sides {
				if m.Unit == s+"-"+spec.Metric {
					add(label, s, m.Value)
					paired = true
				}
			}
		}
		if paired {
			// The loop's own ratio belongs to its time metric; the plain
			// unit is the pair, not a side.
			for _, s := range sides {
				if v, ok := r.Metric("regent/" + s); ok {
					k := sample{label, s}
					ratios[k] = append(ratios[k], v)
				}
			}
			continue
		}
		v, ok := r.Metric(spec.Metric)
		if !ok {
			continue
		}
		label, side := splitSide(label)
		if label == "" {
			label = strings.TrimPrefix(bench, "Benchmark") // a benchmark without sub-benchmarks
		}
		add(label, side, v)
	}
	p := Panel{Spec: spec}
	for _, label := range labels {
		g := Group{Label: label}
		for _, s := range append(slices.Clone(sides), "") {
			if vs := values[sample{label, s}]; len(vs) > 0 {
				g.Bars = append(g.Bars, summarise(s, vs))
			}
		}
		if len(g.Bars) > 1 && g.Bars[0].Side == "regent" {
			for _, b := range g.Bars[1:] {
				measured := ratios[sample{label, b.Side}]
				g.Ratios = append(g.Ratios, ratio(g.Bars[0], b, measured))
				g.Paired = g.Paired || len(measured) > 0
			}
		}
		p.Groups = append(p.Groups, g)
	}
	return p
}

// splitSide takes the side out of a sub-benchmark path: "etcd/handover/raw"
// is side raw of group "etcd/handover". A path without one is a side of
// its own, drawn as a single bar.
func splitSide(label string) (string, string) {
	parts := strings.Split(label, "/")
	for i, p := range parts {
		if slices.Contains(sides, p) {
			return strings.Join(slices.Delete(parts, i, i+1), "/"), p
		}
	}
	return label, ""
}

func summarise(side string, vs []float64) Bar {
	s := slices.Sorted(slices.Values(vs))
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + med) / 2
	}
	return Bar{Side: side, Median: med, Min: s[0], Max: s[len(s)-1], Runs: len(s)}
}

// ratio describes regent against another side: the median of the ratios
// a paired loop measured (with their range) when there are some, since
// pairing cancels the load both sides saw; else the ratio of the medians.
func ratio(regent, other Bar, measured []float64) string {
	name := "regent/" + other.Side
	if len(measured) > 0 {
		m := summarise("", measured)
		if m.Runs == 1 {
			return name + " " + ratioText(m.Median)
		}
		return fmt.Sprintf("%s %s (%s-%s)", name, ratioText(m.Median), ratioText(m.Min), ratioText(m.Max))
	}
	if regent.Median == 0 || other.Median == 0 {
		return "" // 0 allocations against 5 says more than a ratio of 0
	}
	return name + " " + ratioText(regent.Median/other.Median)
}

// ratioText keeps two decimals, which is what tells 1.00 from 1.05, but
// drops them once they no longer matter (585, not 585.33).
func ratioText(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.2f", r)
}
