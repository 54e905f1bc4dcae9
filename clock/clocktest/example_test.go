package clocktest_test

import (
	"fmt"
	"time"

	"github.com/regentkv/regent/workqueue"
	"github.com/regentkv/regent/workqueue/clocktest"
)

// A delayed item becomes runnable exactly when the test moves the clock.
func Example() {
	clock := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	q := workqueue.New(workqueue.Config[string]{Clock: clock})
	defer q.ShutDown()

	q.AddAfter("default/web", time.Minute)
	clock.Step(59 * time.Second)
	fmt.Println("after 59s:", q.Len())
	clock.Step(time.Second)
	fmt.Println("after 60s:", q.Len())
	// Output:
	// after 59s: 0
	// after 60s: 1
}
