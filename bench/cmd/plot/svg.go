package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Chart is everything one SVG file shows.
type Chart struct {
	Title   string
	Command string            // the command that produced the results
	Caption []string          // machine, and how bars and whiskers summarise the runs
	Labels  map[string]string // side -> legend text ("raw" -> "raw clientv3")
	Panels  []Panel
}

// Layout, in SVG user units (pixels at 100%). Widths of text are estimated
// from character counts: there is no font metrics without a renderer, and
// an overestimate only costs some white space.
const (
	width        = 960
	rightSpace   = 120 // for the value printed after each bar
	barHeight    = 16
	barGap       = 4
	groupGap     = 16
	charWidth    = 6.8                    // 12 px sans-serif, generous
	logRange     = 100                    // max/min beyond which one linear axis would hide the small bars
	captionChars = (width - 32) * 10 / 68 // characters per caption line, at charWidth
)

var sideColour = map[string]string{"regent": "#2b6cb0", "raw": "#dd6b20", "rawwatch": "#975a16", "clientgo": "#dd6b20",
	"controller-runtime": "#dd6b20", "fifo": "#975a16", "": "#718096"}

// Render writes c as a standalone SVG document.
func Render(w io.Writer, c Chart) error {
	var b bytes.Buffer
	left := 0.0
	for _, p := range c.Panels {
		for _, g := range p.Groups {
			left = max(left, float64(len([]rune(g.Label)))*charWidth)
			for _, r := range g.Ratios {
				left = max(left, float64(len(r))*charWidth*0.92)
			}
		}
	}
	left = math.Ceil(max(left+24, 120))
	plotW := width - left - rightSpace

	var body bytes.Buffer
	y := 30.0
	text(&body, 16, y, 17, "start", "font-weight=\"bold\"", c.Title)
	y += 22
	text(&body, 16, y, 12, "start", "font-family=\"monospace\"", c.Command)
	y += 18
	for _, line := range c.Caption {
		for _, l := range wrap(line, captionChars) {
			text(&body, 16, y, 12, "start", "fill=\"#4a5568\"", l)
			y += 16
		}
	}
	y += 6
	x := 16.0
	for _, s := range append(slices.Clone(sides), "") {
		if !hasSide(c.Panels, s) {
			continue
		}
		label := c.Labels[s]
		if label == "" {
			label = s
		}
		if label == "" {
			continue // a single unnamed series needs no legend
		}
		fmt.Fprintf(&body, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x, y-10, sideColour[s])
		text(&body, x+18, y, 12, "start", "", label)
		x += 18 + float64(len([]rune(label)))*charWidth + 24
	}
	y += 10
	for _, p := range c.Panels {
		y = panel(&body, p, left, plotW, y+24)
	}
	height := math.Ceil(y + 16)

	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\" font-family=\"sans-serif\">\n", width, height, width, height)
	b.WriteString("<title>")
	_ = xml.EscapeText(&b, []byte(c.Title))
	b.WriteString("</title>\n")
	fmt.Fprintf(&b, "<rect width=\"%d\" height=\"%.0f\" fill=\"#ffffff\"/>\n", width, height)
	b.Write(body.Bytes())
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// wrap breaks s at spaces into lines of at most n characters.
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(w)) > n {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

func hasSide(panels []Panel, side string) bool {
	for _, p := range panels {
		for _, g := range p.Groups {
			for _, b := range g.Bars {
				if b.Side == side {
					return true
				}
			}
		}
	}
	return false
}

// panel draws one panel from y down and returns where it ends.
func panel(w *bytes.Buffer, p Panel, left, plotW, y float64) float64 {
	ax := newAxis(p)
	text(w, 16, y, 14, "start", "font-weight=\"bold\"", p.Spec.Title)
	y += 14
	top := y
	// Bars go to their own buffer so that the grid, whose height is known
	// only once they are laid out, can be written first and lie beneath.
	var bars bytes.Buffer
	for _, g := range p.Groups {
		gy := y
		for _, b := range g.Bars {
			bar(&bars, ax, b, left, plotW, y)
			y += barHeight + barGap
		}
		// The label sits beside regent's bar, each ratio beside the bar it
		// compares regent with; a lone bar still gets the height of two,
		// so that groups read as groups.
		y = max(y, gy+2*(barHeight+barGap))
		text(&bars, left-10, gy+barHeight-4, 12, "end", "", g.Label)
		for i, r := range g.Ratios {
			if r != "" {
				text(&bars, left-10, gy+float64(i+1)*(barHeight+barGap)+barHeight-4, 11, "end", "fill=\"#4a5568\"", r)
			}
		}
		y += groupGap - barGap
	}
	bottom := y - groupGap + barGap + 4
	for _, t := range ax.ticks() {
		x := left + ax.pos(t)*plotW
		fmt.Fprintf(w, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#cbd5e0\" stroke-width=\"0.5\"/>\n", x, top, x, bottom)
		text(w, x, bottom+14, 11, "middle", "fill=\"#4a5568\"", ax.value(t))
	}
	fmt.Fprintf(w, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#2d3748\"/>\n", left, bottom, left+plotW, bottom)
	fmt.Fprintf(w, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#2d3748\"/>\n", left, top, left, bottom)
	w.Write(bars.Bytes())
	text(w, left+plotW/2, bottom+30, 12, "middle", "", ax.label())
	return bottom + 30
}

func bar(w *bytes.Buffer, ax axis, b Bar, left, plotW, y float64) {
	end := left + ax.pos(b.Median)*plotW
	fmt.Fprintf(w, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>", left, y, end-left, barHeight, sideColour[b.Side])
	_ = xml.EscapeText(w, []byte(fmt.Sprintf("%s: median %s, min %s, max %s, %d run(s)", sideName(b.Side), ax.value(b.Median), ax.value(b.Min), ax.value(b.Max), b.Runs)))
	w.WriteString("</title></rect>\n")
	right := end
	if b.Runs > 1 && b.Max > b.Min {
		lo, hi := left+ax.pos(b.Min)*plotW, left+ax.pos(b.Max)*plotW
		mid := y + barHeight/2
		fmt.Fprintf(w, "<path d=\"M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f\" stroke=\"#1a202c\" stroke-width=\"1.2\" fill=\"none\"/>\n",
			lo, mid, hi, lo, mid-4, mid+4, hi, mid-4, mid+4)
		right = max(right, hi)
	}
	text(w, right+6, y+barHeight-4, 11, "start", "", ax.value(b.Median))
}

func sideName(s string) string {
	if s == "" {
		return "value"
	}
	return s
}

func text(w *bytes.Buffer, x, y float64, size int, anchor, attrs, s string) {
	fmt.Fprintf(w, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\"", x, y, size, anchor)
	if attrs != "" {
		w.WriteString(" " + attrs)
	}
	w.WriteString(">")
	_ = xml.EscapeText(w, []byte(s))
	w.WriteString("</text>\n")
}

// axis maps metric values to [0, 1] of the plot width and names them.
type axis struct {
	metric   string
	base     float64 // nanoseconds per unit of a time metric, 0 for others
	log      bool
	lo, hi   float64 // in metric units; lo is 0 on a linear axis
	tickStep float64
}

// timeUnits are the time units benchmarks report in, in nanoseconds.
var timeUnits = map[string]float64{"ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}

// timeBase returns how many nanoseconds one unit of metric is, if metric
// is a time: "ns/op", "ms/failover", "p50-µs".
func timeBase(metric string) (float64, bool) {
	u, _, _ := strings.Cut(metric, "/")
	if i := strings.LastIndexByte(u, '-'); i >= 0 {
		u = u[i+1:]
	}
	ns, ok := timeUnits[u]
	return ns, ok
}

func newAxis(p Panel) axis {
	a := axis{metric: p.Spec.Metric}
	a.base, _ = timeBase(a.metric)
	hi, minPos := 0.0, math.Inf(1)
	for _, g := range p.Groups {
		for _, b := range g.Bars {
			hi = max(hi, b.Max, b.Median)
			for _, v := range []float64{b.Min, b.Median} {
				if v > 0 {
					minPos = min(minPos, v)
				}
			}
		}
	}
	if hi <= 0 {
		hi = 1
	}
	if !math.IsInf(minPos, 1) && hi/minPos > logRange {
		a.log = true
		a.lo = math.Pow(10, math.Floor(math.Log10(minPos)))
		a.hi = math.Pow(10, math.Ceil(math.Log10(hi)))
		return a
	}
	a.tickStep = niceStep(hi / 5)
	a.hi = math.Ceil(hi/a.tickStep-1e-9) * a.tickStep
	return a
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*p >= raw*0.999 {
			return m * p
		}
	}
	return 10 * p
}

func (a axis) pos(v float64) float64 {
	if a.log {
		if v <= a.lo {
			return 0
		}
		return math.Log10(v/a.lo) / math.Log10(a.hi/a.lo)
	}
	return v / a.hi
}

func (a axis) ticks() []float64 {
	var ts []float64
	if a.log {
		for v := a.lo; v <= a.hi*1.001; v *= 10 {
			ts = append(ts, v)
		}
		return ts
	}
	for i := 0.0; i*a.tickStep <= a.hi*1.001; i++ {
		ts = append(ts, i*a.tickStep)
	}
	return ts
}

// value prints a time in the unit that suits it, so that one axis can
// read 100 ns, 10 µs and 1 ms without a column of zeros.
func (a axis) value(v float64) string {
	if a.base == 0 || v == 0 {
		return number(v)
	}
	ns := v * a.base
	for _, u := range []struct {
		name string
		ns   float64
	}{{"s", 1e9}, {"ms", 1e6}, {"µs", 1e3}} {
		if math.Abs(ns) >= u.ns*0.9995 {
			return number(ns/u.ns) + " " + u.name
		}
	}
	return number(ns) + " ns"
}

func (a axis) label() string {
	l := a.metric
	if a.base != 0 {
		_, per, ok := strings.Cut(a.metric, "/")
		switch {
		case ok:
			l = "time per " + per
		case strings.Contains(a.metric, "-"):
			l = "time (" + a.metric[:strings.LastIndexByte(a.metric, '-')] + ")"
		default:
			l = "time"
		}
	}
	if a.log {
		l += ", log scale"
	}
	return l
}

// number prints three significant figures at most, with thousands
// separators and no trailing zeros, so that 0.998, 65,406 and 3.7 all
// read at a glance.
func number(v float64) string {
	switch a := math.Abs(v); {
	case v == 0:
		return "0"
	case a >= 100:
		return thousands(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	case a >= 10:
		return trimZeros(strconv.FormatFloat(v, 'f', 1, 64))
	case a >= 1:
		return trimZeros(strconv.FormatFloat(v, 'f', 2, 64))
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func trimZeros(s string) string {
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

func thousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
