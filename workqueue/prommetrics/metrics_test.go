package prommetrics_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/regentkv/regent/workqueue"
	"github.com/regentkv/regent/workqueue/prommetrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMetricsOnARealRegistry(t *testing.T) {
	// In a bubble: the queue and its limiter run on its time, which moves
	// only with time.Sleep, so the durations below are exact.
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		m := prommetrics.New("pods")
		if err := reg.Register(m); err != nil {
			t.Fatalf("Register: %v", err)
		}
		limiter, _ := workqueue.Exponential[string](time.Second, time.Minute)
		q := workqueue.New(workqueue.Config[string]{Metrics: m, RateLimiter: limiter})
		defer q.ShutDown()

		q.Add("a")
		q.Add("a") // collapses: not counted
		q.Add("b")
		q.Add("c")
		time.Sleep(2 * time.Second)
		a, _ := q.Get() // waited 2s
		b, _ := q.Get() // waited 2s
		time.Sleep(3 * time.Second)
		q.Done(b) // worked 3s
		time.Sleep(time.Second)
		q.AddRateLimited("d")

		// a has run for 4s; c is still queued; d waits for its backoff.
		want := `
# HELP workqueue_adds_total Total number of adds handled by the workqueue (duplicates of pending items excluded).
# TYPE workqueue_adds_total counter
workqueue_adds_total{name="pods"} 3
# HELP workqueue_depth Current depth of the workqueue: items queued and not yet handed to a worker.
# TYPE workqueue_depth gauge
workqueue_depth{name="pods"} 1
# HELP workqueue_longest_running_processor_seconds How many seconds the longest running worker has been processing its item.
# TYPE workqueue_longest_running_processor_seconds gauge
workqueue_longest_running_processor_seconds{name="pods"} 4
# HELP workqueue_retries_total Total number of rate-limited adds (retries) handled by the workqueue.
# TYPE workqueue_retries_total counter
workqueue_retries_total{name="pods"} 1
# HELP workqueue_unfinished_work_seconds How many seconds of work are in progress and not yet observed by work_duration. Large values indicate stuck workers.
# TYPE workqueue_unfinished_work_seconds gauge
workqueue_unfinished_work_seconds{name="pods"} 4
`
		names := []string{"workqueue_adds_total", "workqueue_depth", "workqueue_longest_running_processor_seconds",
			"workqueue_retries_total", "workqueue_unfinished_work_seconds"}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
			t.Fatal(err)
		}

		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		hist := map[string][2]float64{} // name -> count, sum
		for _, f := range families {
			if h := f.GetMetric()[0].GetHistogram(); h != nil {
				hist[f.GetName()] = [2]float64{float64(h.GetSampleCount()), h.GetSampleSum()}
			}
		}
		if got, want := hist["workqueue_queue_duration_seconds"], [2]float64{2, 4}; got != want {
			t.Errorf("queue_duration count, sum = %v, want %v", got, want)
		}
		if got, want := hist["workqueue_work_duration_seconds"], [2]float64{1, 3}; got != want {
			t.Errorf("work_duration count, sum = %v, want %v", got, want)
		}
		q.Done(a)
		if got := testutil.ToFloat64(prometheus.Collector(gaugeOnly{m, "workqueue_unfinished_work_seconds"})); got != 0 {
			t.Errorf("unfinished work after the last Done = %v, want 0", got)
		}
	})
}

// gaugeOnly narrows a collector to one metric so testutil.ToFloat64 can read it.
type gaugeOnly struct {
	c    prometheus.Collector
	name string
}

func (g gaugeOnly) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(g, ch) }

func (g gaugeOnly) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric, 16)
	g.c.Collect(all)
	close(all)
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+g.name+`"`) {
			ch <- m
		}
	}
}

func TestTwoQueuesOnOneRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(prommetrics.New("a")); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(prommetrics.New("b")); err != nil {
		t.Fatalf("a second queue with another name must register: %v", err)
	}
	if err := reg.Register(prommetrics.New("a")); err == nil {
		t.Fatal("registering the same name twice succeeded, want an error")
	}
}
