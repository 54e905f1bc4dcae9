package clocktest_test

import (
	"fmt"
	"time"

	"github.com/regentkv/regent/clock/clocktest"
)

// A timer fires exactly when the test moves the clock past it, on the
// test's goroutine.
func Example() {
	clock := clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	clock.AfterFunc(time.Minute, func() { fmt.Println("fired at", clock.Now().Format("15:04:05")) })
	clock.Step(59 * time.Second)
	fmt.Println("after 59s, armed:", clock.Armed())
	clock.Step(time.Second)
	fmt.Println("after 60s, armed:", clock.Armed())
	// Output:
	// after 59s, armed: 1
	// fired at 00:01:00
	// after 60s, armed: 0
}
