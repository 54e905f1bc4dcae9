package election

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus metrics of one or more Electors, labelled by
// election key. Register them yourself: reg.MustRegister(m).
type Metrics struct {
	isLeader    *prometheus.GaugeVec
	transitions *prometheus.CounterVec
}

// NewMetrics returns unregistered metrics:
//
//	regent_election_is_leader{election}           1 while this process leads
//	regent_election_leader_transitions_total{election}  times it became leader
func NewMetrics() *Metrics {
	return &Metrics{
		isLeader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "regent", Subsystem: "election", Name: "is_leader",
			Help: "1 while this process is the leader of the election, else 0.",
		}, []string{"election"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "regent", Subsystem: "election", Name: "leader_transitions_total",
			Help: "Times this process became the leader of the election.",
		}, []string{"election"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.isLeader.Describe(ch)
	m.transitions.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.isLeader.Collect(ch)
	m.transitions.Collect(ch)
}

func (m *Metrics) leading(key string, on bool) {
	if m == nil {
		return
	}
	if on {
		m.isLeader.WithLabelValues(key).Set(1)
		m.transitions.WithLabelValues(key).Inc()
		return
	}
	m.isLeader.WithLabelValues(key).Set(0)
}
