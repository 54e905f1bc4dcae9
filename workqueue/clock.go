package workqueue

import "time"

// Clock is the queue's source of time. The delaying and rate-limiting parts
// of the queue read the time and arm one timer through it, so tests can drive
// them with a fake (see the clocktest package) instead of sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc arranges for f to run in its own goroutine once d has
	// elapsed, with the semantics of time.AfterFunc. The queue calls it at
	// most once and then re-arms the returned Timer.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer made by Clock.AfterFunc, with the semantics of a
// *time.Timer made by time.AfterFunc: Stop returns true if it prevented a
// pending run of f; Reset returns true if it rescheduled a pending run and
// false if it scheduled a new one (a run that already started still
// happens).
type Timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// RealClock returns the Clock backed by package time, the default.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
