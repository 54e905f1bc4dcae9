package informer

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus metrics of one or more Informers, labelled by
// informer name (Config.Name) and, per handler, by handler name. Register
// them yourself: reg.MustRegister(m).
type Metrics struct {
	events       *prometheus.CounterVec
	relists      *prometheus.CounterVec
	revision     *prometheus.GaugeVec
	decodeErrors *prometheus.CounterVec
	queueDepth   *prometheus.GaugeVec
	catchUps     *prometheus.CounterVec
	panics       *prometheus.CounterVec
}

// NewMetrics returns unregistered metrics:
//
//	regent_informer_events_total{informer,type}          changes applied to the cache (add, update, delete)
//	regent_informer_relists_total{informer}              lists of the prefix after the first
//	regent_informer_last_synced_revision{informer}       revision the cache has applied
//	regent_informer_decode_errors_total{informer}        values that failed Decode, Transform or an index
//	regent_informer_handler_queue_depth{informer,handler}      notifications waiting for the handler
//	regent_informer_handler_catchups_total{informer,handler}   times the handler's queue overflowed
//	regent_informer_handler_panics_total{informer,handler}     handler calls that panicked
func NewMetrics() *Metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "regent", Subsystem: "informer", Name: name, Help: help}
	}
	return &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts(opts("events_total",
			"Changes applied to the cache, by type (add, update, delete).")), []string{"informer", "type"}),
		relists: prometheus.NewCounterVec(prometheus.CounterOpts(opts("relists_total",
			"Lists of the prefix after the first one (compaction, index reset, fallback watch restart).")), []string{"informer"}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("last_synced_revision",
			"Store revision up to which the cache has applied every change.")), []string{"informer"}),
		decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("decode_errors_total",
			"Values that failed Decode, Transform or an index function.")), []string{"informer"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("handler_queue_depth",
			"Notifications queued for the handler.")), []string{"informer", "handler"}),
		catchUps: prometheus.NewCounterVec(prometheus.CounterOpts(opts("handler_catchups_total",
			"Times the handler's bounded queue overflowed and it caught up from the cache instead.")), []string{"informer", "handler"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts(opts("handler_panics_total",
			"Handler calls that panicked (recovered).")), []string{"informer", "handler"}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.events, m.relists, m.revision, m.decodeErrors, m.queueDepth, m.catchUps, m.panics}
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

// informerMetrics holds one informer's children, looked up once: label
// lookups on every event would cost more than the event.
type informerMetrics struct {
	m                   *Metrics
	name                string
	adds, updates, dels prometheus.Counter
	relists, decodeErrs prometheus.Counter
	revision            prometheus.Gauge
}

func newInformerMetrics(m *Metrics, name string) *informerMetrics {
	if m == nil {
		return nil
	}
	return &informerMetrics{
		m: m, name: name,
		adds:       m.events.WithLabelValues(name, "add"),
		updates:    m.events.WithLabelValues(name, "update"),
		dels:       m.events.WithLabelValues(name, "delete"),
		relists:    m.relists.WithLabelValues(name),
		decodeErrs: m.decodeErrors.WithLabelValues(name),
		revision:   m.revision.WithLabelValues(name),
	}
}

func (im *informerMetrics) event(old, e bool) {
	if im == nil {
		return
	}
	switch {
	case e && !old:
		im.adds.Inc()
	case e:
		im.updates.Inc()
	default:
		im.dels.Inc()
	}
}

func (im *informerMetrics) relist() {
	if im != nil {
		im.relists.Inc()
	}
}

func (im *informerMetrics) decodeError() {
	if im != nil {
		im.decodeErrs.Inc()
	}
}

func (im *informerMetrics) synced(rev uint64) {
	if im != nil {
		im.revision.Set(float64(rev))
	}
}

// handlerMetrics are one handler's children; nil without Metrics.
type handlerMetrics struct {
	depth    prometheus.Gauge
	catchUps prometheus.Counter
	panics   prometheus.Counter
}

func (im *informerMetrics) handler(name string) *handlerMetrics {
	if im == nil {
		return nil
	}
	return &handlerMetrics{
		depth:    im.m.queueDepth.WithLabelValues(im.name, name),
		catchUps: im.m.catchUps.WithLabelValues(im.name, name),
		panics:   im.m.panics.WithLabelValues(im.name, name),
	}
}

// forget drops a removed handler's series so that removed handlers do not
// accumulate.
func (im *informerMetrics) forget(name string) {
	if im == nil {
		return
	}
	im.m.queueDepth.DeleteLabelValues(im.name, name)
}

// Relists returns the re-list counter of the named informer, for tests and
// alerts that read it directly.
func (m *Metrics) Relists(informer string) prometheus.Counter {
	return m.relists.WithLabelValues(informer)
}

// CatchUps returns the catch-up counter of one handler of the named
// informer.
func (m *Metrics) CatchUps(informer, handler string) prometheus.Counter {
	return m.catchUps.WithLabelValues(informer, handler)
}

// Panics returns the panic counter of one handler of the named informer.
func (m *Metrics) Panics(informer, handler string) prometheus.Counter {
	return m.panics.WithLabelValues(informer, handler)
}

// DecodeErrors returns the decode error counter of the named informer.
func (m *Metrics) DecodeErrors(informer string) prometheus.Counter {
	return m.decodeErrors.WithLabelValues(informer)
}
