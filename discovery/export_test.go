package discovery

import "github.com/prometheus/client_golang/prometheus"

// MetricVecs are a Metrics' vectors, for the tests to read.
type MetricVecs struct {
	Instances, Published        *prometheus.GaugeVec
	Withdrawals, Lost, Restored *prometheus.CounterVec
}

func (m *Metrics) Collectors() MetricVecs {
	return MetricVecs{m.instances, m.published, m.withdrawals, m.lost, m.restored}
}
