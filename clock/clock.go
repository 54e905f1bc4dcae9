package clock

import "time"

// Clock is a source of time: what reads the time and arms timers through
// it can be driven by a fake (clocktest.Fake) in a test that cannot run in
// a testing/synctest bubble (a real server on the network).
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc arranges for f to run in its own goroutine once d has
	// elapsed, with the semantics of time.AfterFunc.
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

// Real returns the Clock backed by package time, every package's default.
func Real() Clock { return real{} }

type real struct{}

func (real) Now() time.Time { return time.Now() }

func (real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
