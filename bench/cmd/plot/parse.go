package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// errMalformed marks a benchmark line that could not be read. Parse keeps
// going after one, so a single garbled line (a log message printed into the
// middle of a result by a server the benchmark started) costs one sample,
// not the whole file.
var errMalformed = errors.New("malformed benchmark line")

// Metric is one "value unit" pair of a result line, in the order printed.
type Metric struct {
	Value float64
	Unit  string
}

// Result is one line of `go test -bench` output: one run of one benchmark.
// With -count N the same Name appears N times.
type Result struct {
	Name       string // without the -GOMAXPROCS suffix
	Procs      int    // 1 when the suffix is absent, as go test prints it
	Iterations int64
	Metrics    []Metric
}

// Metric returns the value reported under unit.
func (r Result) Metric(unit string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

// File is a whole `go test -bench` output: its results and its
// configuration lines ("goos: linux", "cpu: ...", and any "key: value"
// line before the first result, as in the Go benchmark data format).
type File struct {
	Config  map[string]string
	Results []Result
}

// Parse reads `go test -bench` output. Lines that are not results (PASS,
// ok, --- BENCH, logs) are skipped; a line that starts like a result but
// does not parse is reported in the returned error (joined, each wrapping
// errMalformed, with its line number) while the good lines are kept.
//
// A name alone on its line is held for the next line: go test prints the
// name before running, so anything the benchmark prints itself ends up
// between the name and its figures.
func Parse(r io.Reader) (File, error) {
	f := File{Config: map[string]string{}}
	var errs []error
	pending := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for line := 0; sc.Scan(); {
		line++
		text := sc.Text()
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		switch {
		case strings.HasPrefix(fields[0], "Benchmark"):
			if len(fields) == 1 {
				pending = fields[0]
				continue
			}
			pending = ""
			res, err := parseResult(fields[0], fields[1:])
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d: %w", line, err))
				if !isInt(fields[1]) {
					// Output printed right after the name: the figures
					// may still follow on a line of their own.
					pending = fields[0]
				}
				continue
			}
			f.Results = append(f.Results, res)
		case pending != "" && isInt(fields[0]):
			res, err := parseResult(pending, fields)
			pending = ""
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d: %w", line, err))
				continue
			}
			f.Results = append(f.Results, res)
		case len(f.Results) == 0 && isConfig(text):
			k, v, _ := strings.Cut(text, ":")
			f.Config[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return f, errors.Join(errs...)
}

// parseResult reads "N value unit value unit ..." after the name.
func parseResult(name string, fields []string) (Result, error) {
	res := Result{Name: name, Procs: 1}
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if p, err := strconv.Atoi(name[i+1:]); err == nil && p > 0 {
			res.Name, res.Procs = name[:i], p
		}
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil || n <= 0 {
		return Result{}, fmt.Errorf("%w: %s: iterations %q", errMalformed, name, fields[0])
	}
	res.Iterations = n
	rest := fields[1:]
	if len(rest) == 0 || len(rest)%2 != 0 {
		return Result{}, fmt.Errorf("%w: %s: want value/unit pairs, got %q", errMalformed, name, strings.Join(rest, " "))
	}
	for i := 0; i < len(rest); i += 2 {
		v, err := strconv.ParseFloat(rest[i], 64)
		if err != nil {
			return Result{}, fmt.Errorf("%w: %s: value %q", errMalformed, name, rest[i])
		}
		res.Metrics = append(res.Metrics, Metric{Value: v, Unit: rest[i+1]})
	}
	return res, nil
}

func isInt(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// isConfig matches the format's configuration lines: a lower-case key
// without spaces, a colon, a value.
func isConfig(line string) bool {
	k, _, ok := strings.Cut(line, ":")
	if !ok || k == "" {
		return false
	}
	for _, c := range k {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}
