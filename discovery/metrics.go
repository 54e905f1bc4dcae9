package discovery

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus metrics of Registrations and Watchers,
// labelled by service (and, for this process's own records, instance ID).
// One Metrics can serve any number of both; register it yourself:
// reg.MustRegister(m).
type Metrics struct {
	instances   *prometheus.GaugeVec
	published   *prometheus.GaugeVec
	withdrawals *prometheus.CounterVec
	lost        *prometheus.CounterVec
	restored    *prometheus.CounterVec
}

// NewMetrics returns unregistered metrics:
//
//	regent_discovery_instances{service}                 instances a Watcher holds (after Match), once synced
//	regent_discovery_published{service,instance}        1 while this process's record is in the store, else 0
//	regent_discovery_withdrawals_total{service}         records withdrawn after failing health checks
//	regent_discovery_records_lost_total{service}        records this process saw gone while registered and healthy
//	regent_discovery_records_restored_total{service}    records it saw back after that (restored by the store, or written again)
//
// A loss is what the registering process's own watch of its record sees:
// a record deleted by someone else, or lost with a session or lease while
// the store could still watch. A record lost during a partition is mostly
// restored by the store before the process can see anything (the tests
// measured 0 losses seen on etcd, ZooKeeper and Consul after a partition
// longer than the TTL): the store's own logs ("keep-alive session lost")
// and a Watcher elsewhere (regent_discovery_instances) tell those.
func NewMetrics() *Metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "regent", Subsystem: "discovery", Name: name, Help: help}
	}
	return &Metrics{
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("instances",
			"Instances of the service a Watcher holds (after Match), once synced.")), []string{"service"}),
		published: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("published",
			"1 while this process's record of the instance is in the store; 0 while withdrawn or lost.")), []string{"service", "instance"}),
		withdrawals: prometheus.NewCounterVec(prometheus.CounterOpts(opts("withdrawals_total",
			"Records withdrawn after failing health checks.")), []string{"service"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts(opts("records_lost_total",
			"Records this process saw gone while registered and healthy (deleted by someone else, or lost with a session or lease while the store could still watch).")), []string{"service"}),
		restored: prometheus.NewCounterVec(prometheus.CounterOpts(opts("records_restored_total",
			"Records this process saw back after a loss: restored by the store, or written again.")), []string{"service"}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.instances, m.published, m.withdrawals, m.lost, m.restored}
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

// registrationMetrics are one Registration's children; nil-safe.
type registrationMetrics struct {
	m                 *Metrics
	service, instance string
}

func (rm *registrationMetrics) setPublished(on bool) {
	if rm == nil {
		return
	}
	v := 0.0
	if on {
		v = 1
	}
	rm.m.published.WithLabelValues(rm.service, rm.instance).Set(v)
}

func (rm *registrationMetrics) withdrawn() {
	if rm == nil {
		return
	}
	rm.m.withdrawals.WithLabelValues(rm.service).Inc()
	rm.setPublished(false)
}

func (rm *registrationMetrics) recordLost() {
	if rm == nil {
		return
	}
	rm.m.lost.WithLabelValues(rm.service).Inc()
	rm.setPublished(false)
}

func (rm *registrationMetrics) recordRestored() {
	if rm == nil {
		return
	}
	rm.m.restored.WithLabelValues(rm.service).Inc()
	rm.setPublished(true)
}

// deregistered drops the instance's series: it is no longer this
// process's.
func (rm *registrationMetrics) deregistered() {
	if rm == nil {
		return
	}
	rm.m.published.DeleteLabelValues(rm.service, rm.instance)
}
