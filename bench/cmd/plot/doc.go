// Command plot draws the bench/ results as SVG bar charts: one chart per
// benchmark family, regent beside the client it is measured against.
//
//	cd bench && go run ./cmd/plot -in results -out ../docs/img   (or: make plots)
//
// Each family reads <in>/<family>.txt, the unedited output of the `go test
// -bench` command printed under the chart's title, and writes
// <out>/<family>.svg. The families and what each chart shows are the table
// in main.go.
//
// What it guarantees:
//   - Bars are the median over the -count repeats of a benchmark, whiskers
//     their min and max; a figure a benchmark reports per side of a paired
//     loop (regent-ns/op, raw-ns/op) is drawn as that side's bar.
//   - A missing results file skips its chart with a message and exit status
//     0, so a family is added by recording its file and running plot again.
//   - A malformed result line is reported (with its line number) and
//     skipped; the rest of the file is still drawn. A file with nothing to
//     draw, or an output that cannot be written, exits 1.
//   - The output depends only on the input files (no dates, no map order),
//     so running it again on the same results leaves git clean.
//   - Only the standard library; the SVG is written by hand and is
//     well-formed XML (the tests decode it).
//
// What it does not do: measure text (label widths are estimated from
// character counts, generously), nor judge the figures: the caption says
// how many runs a bar summarises, and docs/benchmarks.md says what they
// mean.
package main
