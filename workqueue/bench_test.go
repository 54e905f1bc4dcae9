package workqueue_test

import (
	"testing"
	"time"

	"github.com/regentkv/regent/workqueue"
)

// nopMetrics is a Metrics that does nothing: the cost of the hook itself.
type nopMetrics struct{}

func (nopMetrics) Add()               {}
func (nopMetrics) Get(time.Duration)  {}
func (nopMetrics) Done(time.Duration) {}
func (nopMetrics) Retry()             {}

// The hot path without metrics must not pay for them: compare "none" with
// "hook" (clock reads plus calls) in the same run.
func BenchmarkAddGetDone(b *testing.B) {
	for _, tc := range []struct {
		name    string
		metrics workqueue.Metrics
	}{{"none", nil}, {"hook", nopMetrics{}}} {
		b.Run(tc.name, func(b *testing.B) {
			q := workqueue.New(workqueue.Config[int]{Metrics: tc.metrics})
			defer q.ShutDown()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				q.Add(i)
				item, _ := q.Get()
				q.Done(item)
			}
		})
	}
}

// Adds of a pending item only look it up.
func BenchmarkAddDuplicate(b *testing.B) {
	q := workqueue.New(workqueue.Config[int]{})
	defer q.ShutDown()
	q.Add(1)
	b.ReportAllocs()
	for b.Loop() {
		q.Add(1)
	}
}

func BenchmarkParallelAddGetDone(b *testing.B) {
	q := workqueue.New(workqueue.Config[int]{})
	defer q.ShutDown()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			q.Add(i)
			item, _ := q.Get()
			q.Done(item)
			i++
		}
	})
}
