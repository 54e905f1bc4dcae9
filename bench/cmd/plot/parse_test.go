package main

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []Result
		config  map[string]string
		badLine int // the line reported malformed, 0 for none
	}{
		{
			name: "standard with header and benchmem",
			in: "goos: linux\ncpu: Some CPU   \n" +
				"BenchmarkQueue/AddGetDone/regent-2  \t13379672\t       107.7 ns/op\t       0 B/op\t       0 allocs/op\n" +
				"PASS\nok  \tgithub.com/x/bench\t16.498s\n",
			config: map[string]string{"goos": "linux", "cpu": "Some CPU"},
			want: []Result{{Name: "BenchmarkQueue/AddGetDone/regent", Procs: 2, Iterations: 13379672,
				Metrics: []Metric{{107.7, "ns/op"}, {0, "B/op"}, {0, "allocs/op"}}}},
		},
		{
			name: "custom metrics and no ns/op",
			in:   "BenchmarkElection/etcd/handover/raw-2 \t 5\t 1.956 ms/handover\t 2.339 p90-ms/handover\n",
			want: []Result{{Name: "BenchmarkElection/etcd/handover/raw", Procs: 2, Iterations: 5,
				Metrics: []Metric{{1.956, "ms/handover"}, {2.339, "p90-ms/handover"}}}},
		},
		{
			name: "no GOMAXPROCS suffix, unicode unit, exponent",
			in:   "BenchmarkInformer/etcd/EventLatency/raw 3 1.2e+06 ns/op 683 p50-µs\n",
			want: []Result{{Name: "BenchmarkInformer/etcd/EventLatency/raw", Procs: 1, Iterations: 3,
				Metrics: []Metric{{1.2e6, "ns/op"}, {683, "p50-µs"}}}},
		},
		{
			name: "a dash in the name that is not the procs suffix",
			in:   "BenchmarkX/a-b 10 5 ns/op\n",
			want: []Result{{Name: "BenchmarkX/a-b", Procs: 1, Iterations: 10, Metrics: []Metric{{5, "ns/op"}}}},
		},
		{
			name: "name alone, output, then the figures",
			in:   "BenchmarkElection/etcd/failover/raw-2 \t\n{\"level\":\"warn\",\"msg\":\"lost leader\"}\n       5\t 3881 ms/failover\n",
			want: []Result{{Name: "BenchmarkElection/etcd/failover/raw", Procs: 2, Iterations: 5,
				Metrics: []Metric{{3881, "ms/failover"}}}},
		},
		{
			name: "output printed after the name on its line",
			in:   "BenchmarkX-2 \t2026/11/25 server started\n 7 12 ns/op\n",
			want: []Result{{Name: "BenchmarkX", Procs: 2, Iterations: 7,
				Metrics: []Metric{{12, "ns/op"}}}},
			badLine: 1,
		},
		{
			name:    "iterations not a number",
			in:      "BenchmarkX-2 abc 12 ns/op\nBenchmarkY-2 1 3 ns/op\n",
			want:    []Result{{Name: "BenchmarkY", Procs: 2, Iterations: 1, Metrics: []Metric{{3, "ns/op"}}}},
			badLine: 1,
		},
		{
			name:    "zero iterations",
			in:      "BenchmarkX-2 0 12 ns/op\n",
			badLine: 1,
		},
		{
			name:    "value without unit",
			in:      "ok\nBenchmarkX-2 10 12\n",
			badLine: 2,
		},
		{
			name:    "iterations only",
			in:      "BenchmarkX-2 10\n",
			badLine: 1,
		},
		{
			name:    "value not a number",
			in:      "BenchmarkX-2 10 fast ns/op\n",
			badLine: 1,
		},
		{
			name:    "truncated pair",
			in:      "BenchmarkX-2 10 12 ns/op 5\n",
			badLine: 1,
		},
		{
			name: "a number line with no name before it is not a result",
			in:   "--- BENCH: BenchmarkX\n    10 12 ns/op\n",
		},
		{
			name:   "config only before the first result",
			in:     "command: go test -bench .\nBenchmarkX 1 1 ns/op\nnote: late\n",
			config: map[string]string{"command": "go test -bench ."},
			want:   []Result{{Name: "BenchmarkX", Procs: 1, Iterations: 1, Metrics: []Metric{{1, "ns/op"}}}},
		},
		{name: "empty", in: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(strings.NewReader(tc.in))
			switch {
			case tc.badLine == 0 && err != nil:
				t.Fatalf("Parse: %v", err)
			case tc.badLine != 0 && !errors.Is(err, errMalformed):
				t.Fatalf("Parse error = %v, want errMalformed", err)
			case tc.badLine != 0 && !strings.Contains(err.Error(), "line "+strconv.Itoa(tc.badLine)+":"):
				t.Fatalf("Parse error = %v, want it on line %d", err, tc.badLine)
			}
			if !reflect.DeepEqual(f.Results, tc.want) {
				t.Errorf("results:\n got %+v\nwant %+v", f.Results, tc.want)
			}
			if tc.config == nil {
				tc.config = map[string]string{}
			}
			if !reflect.DeepEqual(f.Config, tc.config) {
				t.Errorf("config = %v, want %v", f.Config, tc.config)
			}
		})
	}
}

func TestResultMetric(t *testing.T) {
	r := Result{Metrics: []Metric{{1, "ns/op"}, {2, "B/op"}}}
	if v, ok := r.Metric("B/op"); !ok || v != 2 {
		t.Errorf("Metric(B/op) = %v, %v", v, ok)
	}
	if _, ok := r.Metric("allocs/op"); ok {
		t.Error("Metric(allocs/op) found a metric that is not there")
	}
}
