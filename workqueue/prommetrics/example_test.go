package prommetrics_test

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regentkv/regent/workqueue"
	"github.com/regentkv/regent/workqueue/prommetrics"
)

func Example() {
	reg := prometheus.NewRegistry() // or the one behind your /metrics
	m := prommetrics.New("reconciler")
	reg.MustRegister(m)

	q := workqueue.New(workqueue.Config[string]{Name: "reconciler", Metrics: m})
	defer q.ShutDown()
	q.Add("default/web")
	q.Add("default/web") // a duplicate: not an add
	q.Add("default/db")
	key, _ := q.Get()
	q.Done(key)

	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		switch m := f.GetMetric()[0]; f.GetName() {
		case "workqueue_adds_total":
			fmt.Println(f.GetName(), m.GetCounter().GetValue())
		case "workqueue_depth":
			fmt.Println(f.GetName(), m.GetGauge().GetValue())
		case "workqueue_work_duration_seconds":
			fmt.Println(f.GetName(), "count", m.GetHistogram().GetSampleCount())
		}
	}
	// Output:
	// workqueue_adds_total 2
	// workqueue_depth 1
	// workqueue_work_duration_seconds count 1
}
