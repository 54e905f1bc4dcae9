package clocktest

import (
	"slices"
	"sync"
	"time"

	"github.com/regentkv/regent/clock"
)

// Fake is a clock.Clock whose time only moves when told to.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer // armed timers, unordered
}

var _ clock.Clock = (*Fake)(nil)

// New returns a Fake set to start.
func New(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// AfterFunc arms a timer that runs fn during the Step or Set that brings the
// time to now+d or later (d <= 0: during the next Step or Set).
func (f *Fake) AfterFunc(d time.Duration, fn func()) clock.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &timer{fake: f, fn: fn}
	f.armLocked(t, d)
	return t
}

// Step advances the time by d, running the callbacks that become due on the
// way, each with the clock set to its due time.
func (f *Fake) Step(d time.Duration) {
	f.mu.Lock()
	target := f.now.Add(d)
	f.mu.Unlock()
	f.advance(target)
}

// Set moves the time to t, running the callbacks that become due on the
// way as Step does. Moving backwards runs nothing.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	if t.Before(f.now) {
		f.now = t
	}
	f.mu.Unlock()
	f.advance(t)
}

// Armed returns the number of timers waiting to run.
func (f *Fake) Armed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// NextDue returns when the earliest armed timer runs, and false when none is
// armed.
func (f *Fake) NextDue() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return time.Time{}, false
	}
	next := f.timers[0].at
	for _, t := range f.timers[1:] {
		if t.at.Before(next) {
			next = t.at
		}
	}
	return next, true
}

// advance runs due callbacks one at a time, earliest first, without holding
// the lock, so a callback may arm timers (those due by target run in this
// same call), then leaves the clock at target.
func (f *Fake) advance(target time.Time) {
	for {
		f.mu.Lock()
		i := -1
		for j, t := range f.timers {
			if !t.at.After(target) && (i < 0 || t.at.Before(f.timers[i].at)) {
				i = j
			}
		}
		if i < 0 {
			f.now = target
			f.mu.Unlock()
			return
		}
		t := f.timers[i]
		f.timers = slices.Delete(f.timers, i, i+1)
		t.armed = false
		if t.at.After(f.now) {
			f.now = t.at
		}
		f.mu.Unlock()
		t.fn()
	}
}

func (f *Fake) armLocked(t *timer, d time.Duration) {
	t.at = f.now.Add(d)
	if !t.armed {
		t.armed = true
		f.timers = append(f.timers, t)
	}
}

func (f *Fake) disarmLocked(t *timer) {
	if i := slices.Index(f.timers, t); i >= 0 {
		f.timers = slices.Delete(f.timers, i, i+1)
	}
	t.armed = false
}

type timer struct {
	fake  *Fake
	fn    func()
	at    time.Time
	armed bool
}

// Stop disarms the timer; it reports whether the timer was armed.
func (t *timer) Stop() bool {
	t.fake.mu.Lock()
	defer t.fake.mu.Unlock()
	was := t.armed
	t.fake.disarmLocked(t)
	return was
}

// Reset re-arms the timer d from now; it reports whether it was armed.
func (t *timer) Reset(d time.Duration) bool {
	t.fake.mu.Lock()
	defer t.fake.mu.Unlock()
	was := t.armed
	t.fake.armLocked(t, d)
	return was
}
