package workqueue

import "time"

// Metrics receives a queue's events. The queue calls it while holding its
// lock, so implementations must be fast and must not call back into the
// queue; counters and histograms with atomic updates (Prometheus) fit. The
// prommetrics package has an implementation.
//
// When Config.Metrics is nil the queue makes no calls and does not read the
// clock on Add, Get or Done.
type Metrics interface {
	// Add: an item became pending (a duplicate of a pending item does not
	// count). Depth grows by one.
	Add()
	// Get: a worker took an item that had been runnable for queued. Depth
	// shrinks by one.
	Get(queued time.Duration)
	// Done: a worker finished an item it held for worked.
	Done(worked time.Duration)
	// Retry: AddRateLimited was called.
	Retry()
}

// InFlightBinder is an optional power of a Metrics, found by type assertion:
// New hands it the queue's InFlight method so that unfinished work and the
// longest running item can be read when metrics are scraped, instead of by a
// goroutine polling the queue.
type InFlightBinder interface {
	BindInFlight(inFlight func() InFlight)
}

// InFlight describes the items being processed at one instant.
type InFlight struct {
	// Processing is the number of items taken by Get and not yet Done.
	Processing int
	// Unfinished is the sum of the time each of them has been processed so
	// far, and Longest the largest of those times. Both stay zero unless
	// the queue has Metrics, because measuring them costs a clock read on
	// every Get and Done.
	Unfinished time.Duration
	Longest    time.Duration
}
