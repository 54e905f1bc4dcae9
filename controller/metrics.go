package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of one or more Controllers, labelled by
// controller name. Register them yourself (reg.MustRegister(m)), or let a
// Manager do it: it gives every controller it runs its own.
type Metrics struct {
	reconciles *prometheus.CounterVec
	panics     *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	active     *prometheus.GaugeVec
	workers    *prometheus.GaugeVec
}

// Reconcile outcomes, the values of the result label.
const (
	resultSuccess      = "success"
	resultRequeueAfter = "requeue_after"
	resultError        = "error"
	resultTerminal     = "terminal_error"
	resultPanic        = "panic"
	resultCanceled     = "canceled"
)

// NewMetrics returns unregistered metrics (controller-runtime's, renamed
// under regent_):
//
//	regent_controller_reconcile_total{controller,result}   reconciles by outcome: success, requeue_after, error, terminal_error, panic, canceled
//	regent_controller_reconcile_panics_total{controller}   reconciles that panicked (recovered)
//	regent_controller_reconcile_time_seconds{controller}   reconcile duration, histogram
//	regent_controller_active_workers{controller}           workers inside Reconcile now
//	regent_controller_max_concurrent_reconciles{controller} configured workers
//
// The work queue's own metrics (client-go's workqueue_* names) come from
// package workqueue/prommetrics; see Config.QueueMetrics.
func NewMetrics() *Metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "regent", Subsystem: "controller", Name: name, Help: help}
	}
	return &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts(opts("reconcile_total",
			"Reconciles by outcome (success, requeue_after, error, terminal_error, panic, canceled).")), []string{"controller", "result"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts(opts("reconcile_panics_total",
			"Reconciles that panicked; the panic was recovered and the key retried.")), []string{"controller"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "regent", Subsystem: "controller",
			Name: "reconcile_time_seconds", Help: "Time spent in Reconcile.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}, []string{"controller"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("active_workers",
			"Workers inside Reconcile now.")), []string{"controller"}),
		workers: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("max_concurrent_reconciles",
			"Configured number of workers.")), []string{"controller"}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.reconciles, m.panics, m.duration, m.active, m.workers}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// Reconciles returns the counter of one controller's reconciles with the
// given result label, for tests and alerts that read it directly.
func (m *Metrics) Reconciles(controller, result string) prometheus.Counter {
	return m.reconciles.WithLabelValues(controller, result)
}

// Panics returns one controller's panic counter.
func (m *Metrics) Panics(controller string) prometheus.Counter {
	return m.panics.WithLabelValues(controller)
}

// controllerMetrics holds one controller's children, looked up once; nil
// Metrics make every method a no-op.
type controllerMetrics struct {
	m    *Metrics
	name string
	// by result, looked up once
	results map[string]prometheus.Counter
	panics  prometheus.Counter
	dur     prometheus.Observer
	active  prometheus.Gauge
}

func newControllerMetrics(m *Metrics, name string, workers int) *controllerMetrics {
	if m == nil {
		return &controllerMetrics{}
	}
	cm := &controllerMetrics{m: m, name: name, results: map[string]prometheus.Counter{},
		panics: m.panics.WithLabelValues(name), dur: m.duration.WithLabelValues(name),
		active: m.active.WithLabelValues(name)}
	for _, r := range []string{resultSuccess, resultRequeueAfter, resultError, resultTerminal, resultPanic, resultCanceled} {
		cm.results[r] = m.reconciles.WithLabelValues(name, r)
	}
	m.workers.WithLabelValues(name).Set(float64(workers))
	return cm
}

func (cm *controllerMetrics) start() {
	if cm.m != nil {
		cm.active.Inc()
	}
}

func (cm *controllerMetrics) done(result string, took time.Duration) {
	if cm.m == nil {
		return
	}
	cm.active.Dec()
	cm.dur.Observe(took.Seconds())
	cm.results[result].Inc()
	if result == resultPanic {
		cm.panics.Inc()
	}
}
