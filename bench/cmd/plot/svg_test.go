package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// samples has one results file per family in the shape its benchmark
// prints, noise included, so that every family's chart is exercised
// without the servers.
var samples = map[string]string{
	"etcd": `goos: linux
cpu: Test CPU
BenchmarkEtcdPaired/Put-2 788 1363434 ns/op 681968 raw-ns/op 680804 regent-ns/op 0.9983 regent/raw 44558 B/op 571 allocs/op
BenchmarkEtcdPaired/Put-2 932 1315438 ns/op 653680 raw-ns/op 661379 regent-ns/op 1.012 regent/raw 44903 B/op 572 allocs/op
BenchmarkEtcdPaired/List100-2 1460 797953 ns/op 399524 raw-ns/op 398206 regent-ns/op 0.9967 regent/raw 246183 B/op 3272 allocs/op
PASS
`,
	"zookeeper": `BenchmarkZookeeperPaired/Get-2 2066 557022 ns/op 275322 raw-ns/op 281450 regent-ns/op 1.022 regent/raw
BenchmarkZookeeperPaired/List100-2 25 45426645 ns/op 29008823 raw-ns/op 16416691 regent-ns/op 0.5659 regent/raw
`,
	"consul": `BenchmarkConsulPaired/WatchLatency-2 2000 1400000 ns/op 600000 raw-ns/op 700000 regent-ns/op 1.17 regent/raw
`,
	"queue": `BenchmarkQueue/AddGetDone/regent-2 13379672 107.7 ns/op 0 B/op 0 allocs/op
BenchmarkQueue/AddGetDone/clientgo-2 4048419 368.5 ns/op 8 B/op 1 allocs/op
BenchmarkQueue/AddAfter/regent-2 667072 1690 ns/op 0 B/op 0 allocs/op
BenchmarkQueue/AddAfter/clientgo-2 113979 52925 ns/op 299 B/op 5 allocs/op
`,
	"election": `BenchmarkElection/etcd/handover/regent-2 5 3.260 ms/handover 4.862 p90-ms/handover
BenchmarkElection/etcd/handover/raw-2
{"level":"info","msg":"<resigned> & gone"}
       5 1.956 ms/handover 2.339 p90-ms/handover
BenchmarkElection/etcd/failover/regent-2 5 3881 ms/failover 4188 p90-ms/failover
BenchmarkElection/consul/failover/regent-2 5 3698 ms/failover 3828 p90-ms/failover
`,
	"informer": `BenchmarkInformer/etcd/Sync100k/regent-2 1 1200000000 ns/op 1148 heap-B/obj 124 overhead-B/obj
BenchmarkInformer/etcd/Sync100k/raw-2 1 890000000 ns/op 1111 heap-B/obj 87 overhead-B/obj
BenchmarkInformer/zookeeper/Sync10k/rawwatch-2 1 2100000000 ns/op 1300 heap-B/obj 276 overhead-B/obj
BenchmarkInformer/zookeeper/ChangeIn10k/regent-2 100 1800000 ns/op 1724 p50-µs 2100 p90-µs
BenchmarkInformer/zookeeper/ChangeIn10k/raw-2 100 1900000 ns/op 1814 p50-µs 2200 p90-µs
`,
	"watches": `BenchmarkWatches/etcd/100-2 1 3077744653 ns/op 1010 change-p50-µs 2.040 goroutines/watch 4194 heap-B/watch 16646 mem-B/watch
BenchmarkWatches/consul/10000-2 1 5987075444 ns/op 100839 change-p50-µs 1.000 goroutines/watch 1452 heap-B/watch 5552 mem-B/watch
`,
	"crowd": `BenchmarkElectionCrowd/etcd/3-2 20 2.211 ms/handover 3.262 p90-ms/handover
BenchmarkElectionCrowd/consul/1000-2 20 4.319 idle-requests/s 42.56 ms/handover 122.5 p90-ms/handover 1391 requests/handover
`,
	"sync1m": `BenchmarkInformer/etcd/Sync1M/regent-2 1 3954022519 ns/op 256.0 heap-B/obj 156.0 overhead-B/obj 479.0 rss-MB
BenchmarkInformer/etcd/Sync1M/raw-2 1 2916175315 ns/op 236.7 heap-B/obj 136.7 overhead-B/obj
`,
	"priority": `BenchmarkPriority/queue/regent-2 5346997 221.7 ns/op 0 B/op 0 allocs/op
BenchmarkPriority/queue/controller-runtime-2 219361 4903 ns/op 741 B/op 21 allocs/op
BenchmarkPriority/failover/regent-2 3 1015 fill-reconciles-before-live 2.174 ms/live 2.306 p90-ms/live
BenchmarkPriority/failover/fifo-2 3 100000 fill-reconciles-before-live 13848 ms/live 13870 p90-ms/live
`,
}

// svgText decodes doc as XML, failing the test on any error, and returns
// the root element and the text of every <text> element.
func svgText(t *testing.T, doc []byte) (xml.Name, []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	var root xml.Name
	var texts []string
	inText := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root.Local == "" {
				root = tok.Name
			}
			inText = tok.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, string(tok))
			}
		case xml.EndElement:
			inText = false
		}
	}
	return root, texts
}

// checkChart checks that doc is an SVG document naming every benchmark of
// results: its group label, its side in the legend, and its function in
// the command line.
func checkChart(t *testing.T, fam family, results []Result, doc []byte) {
	t.Helper()
	root, texts := svgText(t, doc)
	if root.Space != "http://www.w3.org/2000/svg" || root.Local != "svg" {
		t.Fatalf("root element = %v, want svg in the SVG namespace", root)
	}
	has := func(s string) bool {
		for _, x := range texts {
			if strings.Contains(x, s) {
				return true
			}
		}
		return false
	}
	if !has(fam.bench) {
		t.Errorf("%s: no text names %s", fam.name, fam.bench)
	}
	if len(results) == 0 {
		t.Fatalf("%s: no results to check against", fam.name)
	}
	for _, r := range results {
		label, side := splitSide(strings.TrimPrefix(strings.TrimPrefix(r.Name, fam.bench), "/"))
		if !has(label) {
			t.Errorf("%s: %s: no text %q", fam.name, r.Name, label)
		}
		if side != "" && !has(fam.labels[side]) {
			t.Errorf("%s: %s: legend lacks %q", fam.name, r.Name, fam.labels[side])
		}
	}
}

func TestRenderEveryFamily(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			in, ok := samples[fam.name]
			if !ok {
				t.Fatalf("no sample for family %s", fam.name)
			}
			dst := filepath.Join(t.TempDir(), fam.name+".svg")
			var log bytes.Buffer
			if err := draw(fam, []byte(in), dst, &log); err != nil {
				t.Fatalf("draw: %v", err)
			}
			if log.Len() != 0 {
				t.Errorf("draw logged %q for a clean sample", log.String())
			}
			doc, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			checkChart(t, fam, mustParse(t, in).Results, doc)
		})
	}
}

// TestRenderCommittedResults draws the results in bench/results, so that a
// results file the charts cannot show fails here rather than in the docs.
func TestRenderCommittedResults(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "results", fam.name+".txt"))
			if errors.Is(err, os.ErrNotExist) {
				t.Skipf("results/%s.txt not recorded yet", fam.name)
			}
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(bytes.NewReader(raw))
			if err != nil {
				t.Errorf("Parse: %v", err)
			}
			dst := filepath.Join(t.TempDir(), fam.name+".svg")
			if err := draw(fam, raw, dst, io.Discard); err != nil {
				t.Fatalf("draw: %v", err)
			}
			doc, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			checkChart(t, fam, f.Results, doc)
		})
	}
}

func TestRenderEscapes(t *testing.T) {
	var b bytes.Buffer
	c := Chart{Title: `a <b> & "c"`, Command: "go test -run '^$'", Caption: []string{"x < y"}, Panels: []Panel{{
		Spec:   PanelSpec{Title: "t&t", Metric: "ns/op"},
		Groups: []Group{{Label: "<Put>", Bars: []Bar{{Side: "regent", Median: 1, Min: 1, Max: 1, Runs: 1}}}},
	}}}
	if err := Render(&b, c); err != nil {
		t.Fatal(err)
	}
	_, texts := svgText(t, b.Bytes())
	if !strings.Contains(strings.Join(texts, "\n"), "<Put>") {
		t.Errorf("label <Put> lost in %q", texts)
	}
}

func TestAxis(t *testing.T) {
	panel := func(metric string, values ...float64) Panel {
		g := Group{Label: "g"}
		for _, v := range values {
			g.Bars = append(g.Bars, Bar{Median: v, Min: v, Max: v, Runs: 1})
		}
		return Panel{Spec: PanelSpec{Metric: metric}, Groups: []Group{g}}
	}
	for _, tc := range []struct {
		name   string
		p      Panel
		log    bool
		label  string
		ticks  []string
		values map[float64]string
	}{
		{"linear time", panel("ns/op", 147e3, 752e3), false, "time per op",
			[]string{"0", "200 µs", "400 µs", "600 µs", "800 µs"}, map[float64]string{752e3: "752 µs", 1363434: "1.36 ms"}},
		{"log when the range is wide", panel("ns/op", 107.7, 52925), true, "time per op, log scale",
			[]string{"100 ns", "1 µs", "10 µs", "100 µs"}, map[float64]string{107.7: "108 ns", 52925: "52.9 µs"}},
		{"time in ms", panel("ms/failover", 3698, 3881), false, "time per failover",
			[]string{"0", "1 s", "2 s", "3 s", "4 s"}, map[float64]string{3.26: "3.26 ms"}},
		{"percentile in µs", panel("p50-µs", 677, 1724), false, "time (p50)", nil, map[float64]string{1724: "1.72 ms"}},
		{"counts with zeros stay linear", panel("allocs/op", 0, 1, 5), false, "allocs/op",
			[]string{"0", "1", "2", "3", "4", "5"}, map[float64]string{0: "0", 5: "5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAxis(tc.p)
			if a.log != tc.log {
				t.Errorf("log = %v, want %v", a.log, tc.log)
			}
			if l := a.label(); l != tc.label {
				t.Errorf("label = %q, want %q", l, tc.label)
			}
			if tc.ticks != nil {
				var got []string
				for _, v := range a.ticks() {
					got = append(got, a.value(v))
				}
				if strings.Join(got, "|") != strings.Join(tc.ticks, "|") {
					t.Errorf("ticks = %q, want %q", got, tc.ticks)
				}
			}
			for v, want := range tc.values {
				if got := a.value(v); got != want {
					t.Errorf("value(%v) = %q, want %q", v, got, want)
				}
			}
			for _, g := range tc.p.Groups {
				for _, b := range g.Bars {
					if p := a.pos(b.Max); p < 0 || p > 1 {
						t.Errorf("pos(%v) = %v, outside the plot", b.Max, p)
					}
				}
			}
		})
	}
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 0.9983: "0.998", 1: "1", 3.7: "3.7", 3.26: "3.26", 16.4: "16.4", 29.0: "29",
		752: "752", 65406: "65,406", 1363434: "1,363,434", -1234: "-1,234",
	} {
		if got := number(v); got != want {
			t.Errorf("number(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestWrap(t *testing.T) {
	got := wrap("aa bb cc dd", 5)
	if want := []string{"aa bb", "cc dd"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("wrap = %q, want %q", got, want)
	}
}
