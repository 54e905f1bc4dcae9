package prommetrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regentkv/regent/workqueue"
)

// Metrics is a workqueue.Metrics that is also a prometheus.Collector.
type Metrics struct {
	depth        prometheus.Gauge
	adds         prometheus.Counter
	latency      prometheus.Histogram
	workDuration prometheus.Histogram
	retries      prometheus.Counter

	unfinishedDesc *prometheus.Desc
	longestDesc    *prometheus.Desc
	inFlight       atomic.Pointer[func() workqueue.InFlight]
}

var (
	_ workqueue.Metrics        = (*Metrics)(nil)
	_ workqueue.InFlightBinder = (*Metrics)(nil)
	_ prometheus.Collector     = (*Metrics)(nil)
)

// durationBuckets span 10 ns to 1000 s in decades, like client-go's, so a
// queue that turns over in microseconds and one whose items take minutes
// are both resolved.
var durationBuckets = prometheus.ExponentialBuckets(10e-9, 10, 12)

// New returns the metrics of the queue called name. Register it on a
// registry and pass it as workqueue.Config.Metrics.
func New(name string) *Metrics {
	labels := prometheus.Labels{"name": name}
	return &Metrics{
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: "workqueue", Name: "depth", ConstLabels: labels,
			Help: "Current depth of the workqueue: items queued and not yet handed to a worker.",
		}),
		adds: prometheus.NewCounter(prometheus.CounterOpts{
			Subsystem: "workqueue", Name: "adds_total", ConstLabels: labels,
			Help: "Total number of adds handled by the workqueue (duplicates of pending items excluded).",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: "workqueue", Name: "queue_duration_seconds", ConstLabels: labels,
			Help:    "How long in seconds an item stays runnable in the workqueue before a worker takes it.",
			Buckets: durationBuckets,
		}),
		workDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: "workqueue", Name: "work_duration_seconds", ConstLabels: labels,
			Help:    "How long in seconds processing an item from the workqueue takes.",
			Buckets: durationBuckets,
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Subsystem: "workqueue", Name: "retries_total", ConstLabels: labels,
			Help: "Total number of rate-limited adds (retries) handled by the workqueue.",
		}),
		unfinishedDesc: prometheus.NewDesc("workqueue_unfinished_work_seconds",
			"How many seconds of work are in progress and not yet observed by work_duration. "+
				"Large values indicate stuck workers.", nil, labels),
		longestDesc: prometheus.NewDesc("workqueue_longest_running_processor_seconds",
			"How many seconds the longest running worker has been processing its item.", nil, labels),
	}
}

// Add implements workqueue.Metrics.
func (m *Metrics) Add() {
	m.adds.Inc()
	m.depth.Inc()
}

// Get implements workqueue.Metrics.
func (m *Metrics) Get(queued time.Duration) {
	m.depth.Dec()
	m.latency.Observe(queued.Seconds())
}

// Done implements workqueue.Metrics.
func (m *Metrics) Done(worked time.Duration) { m.workDuration.Observe(worked.Seconds()) }

// Retry implements workqueue.Metrics.
func (m *Metrics) Retry() { m.retries.Inc() }

// BindInFlight implements workqueue.InFlightBinder; workqueue.New calls it.
func (m *Metrics) BindInFlight(f func() workqueue.InFlight) { m.inFlight.Store(&f) }

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.depth.Describe(ch)
	m.adds.Describe(ch)
	m.latency.Describe(ch)
	m.workDuration.Describe(ch)
	m.retries.Describe(ch)
	ch <- m.unfinishedDesc
	ch <- m.longestDesc
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.depth.Collect(ch)
	m.adds.Collect(ch)
	m.latency.Collect(ch)
	m.workDuration.Collect(ch)
	m.retries.Collect(ch)
	var f workqueue.InFlight
	if p := m.inFlight.Load(); p != nil {
		f = (*p)()
	}
	ch <- prometheus.MustNewConstMetric(m.unfinishedDesc, prometheus.GaugeValue, f.Unfinished.Seconds())
	ch <- prometheus.MustNewConstMetric(m.longestDesc, prometheus.GaugeValue, f.Longest.Seconds())
}
