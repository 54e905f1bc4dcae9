// Package prommetrics reports a workqueue's metrics to Prometheus, under
// the names client-go uses, so existing dashboards keep working:
//
//	workqueue_depth                              gauge
//	workqueue_adds_total                         counter
//	workqueue_queue_duration_seconds             histogram
//	workqueue_work_duration_seconds              histogram
//	workqueue_unfinished_work_seconds            gauge
//	workqueue_longest_running_processor_seconds  gauge
//	workqueue_retries_total                      counter
//
// each with a constant label name="<queue name>".
//
// A *Metrics is a prometheus.Collector that the caller registers on the
// registry of its choice (nothing is registered globally), and a
// workqueue.Metrics that the caller passes in workqueue.Config. Unfinished
// work and the longest running processor are computed from the queue when
// the registry is scraped, so no goroutine polls the queue. It is safe for
// concurrent use. One *Metrics serves one queue; give each queue its own,
// with a distinct name.
package prommetrics
