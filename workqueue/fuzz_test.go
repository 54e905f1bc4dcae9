package workqueue_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/clock"
	"github.com/regentkv/regent/workqueue"
)

// delayModel is model (model_test.go) with delays and shutdown: the
// queue's state machine written the obvious way. Items that fall due at
// the same instant may be handed out in any order among themselves, so
// the FIFO is a list of groups; Get takes any member of the first.
type delayModel struct {
	now        time.Duration
	fifo       [][]int
	queued     map[int]bool
	processing map[int]bool
	redo       map[int]bool
	waiting    map[int]time.Duration // item -> due
	shut       bool
}

func newDelayModel() *delayModel {
	return &delayModel{queued: map[int]bool{}, processing: map[int]bool{}, redo: map[int]bool{}, waiting: map[int]time.Duration{}}
}

func (m *delayModel) len() int {
	n := 0
	for _, g := range m.fifo {
		n += len(g)
	}
	return n
}

func (m *delayModel) addNow(k int) {
	switch {
	case m.processing[k]:
		m.redo[k] = true
	case !m.queued[k]:
		m.queued[k] = true
		m.fifo = append(m.fifo, []int{k})
	}
}

func (m *delayModel) add(k int) {
	if !m.shut {
		m.addNow(k)
	}
}

func (m *delayModel) addAfter(k int, d time.Duration) {
	if m.shut {
		return
	}
	if d <= 0 {
		m.addNow(k)
		return
	}
	if due, ok := m.waiting[k]; ok && due <= m.now+d {
		return
	}
	m.waiting[k] = m.now + d
}

// promote moves every item due by now to the FIFO, in due order; items
// due at the same instant form one group.
func (m *delayModel) promote() {
	var due []int
	for k, at := range m.waiting {
		if at <= m.now {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, func(a, b int) int { return int(m.waiting[a] - m.waiting[b]) })
	var group []int
	last := time.Duration(-1)
	flush := func() {
		if len(group) > 0 {
			m.fifo = append(m.fifo, group)
			group = nil
		}
	}
	for _, k := range due {
		at := m.waiting[k]
		delete(m.waiting, k)
		if at != last {
			flush()
			last = at
		}
		switch {
		case m.processing[k]:
			m.redo[k] = true
		case !m.queued[k]:
			m.queued[k] = true
			group = append(group, k)
		}
	}
	flush()
}

// runnable reports whether a Get would hand out an item: one is queued,
// or one is due that is neither queued nor held.
func (m *delayModel) runnable() bool {
	if m.len() > 0 {
		return true
	}
	for k, at := range m.waiting {
		if at <= m.now && !m.processing[k] {
			return true
		}
	}
	return false
}

func (m *delayModel) get(k int) bool {
	if len(m.fifo) == 0 || !slices.Contains(m.fifo[0], k) {
		return false
	}
	g := slices.DeleteFunc(m.fifo[0], func(x int) bool { return x == k })
	if len(g) == 0 {
		m.fifo = m.fifo[1:]
	} else {
		m.fifo[0] = g
	}
	delete(m.queued, k)
	m.processing[k] = true
	return true
}

func (m *delayModel) done(k int) {
	delete(m.processing, k)
	if m.redo[k] {
		delete(m.redo, k)
		m.addNow(k) // after shutdown too: it was added while held
	}
}

func (m *delayModel) shutDown() {
	if m.shut {
		return
	}
	m.promote()
	m.shut = true
	clear(m.waiting)
}

// FuzzQueue drives a queue in a testing/synctest bubble with an operation
// sequence decoded from the input, two bytes per operation, and checks
// every Get and Len against delayModel. An odd first byte runs the queue on
// a clock whose timers never fire (timers as late as they get): delayed
// items are then moved only by Get and ShutDown, which must still treat as
// due what the clock says is due.
func FuzzQueue(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 2, 2, 0, 2, 0, 3, 0})
	f.Add([]byte{1, 0, 1, 0, 2, 2, 0, 2, 0, 3, 0})
	f.Add([]byte{0, 1, 9, 1, 13, 4, 3, 2, 0, 3, 0, 4, 4, 2, 0})
	f.Add([]byte{1, 1, 9, 1, 13, 4, 3, 2, 0, 3, 0, 4, 4, 2, 0})
	f.Add([]byte{0, 0, 1, 2, 0, 0, 1, 3, 0, 2, 0, 3, 0})
	f.Add([]byte{1, 0, 1, 2, 0, 0, 1, 3, 0, 2, 0, 3, 0})
	f.Add([]byte{0, 1, 5, 1, 6, 4, 1, 5, 0, 2, 0, 2, 0, 3, 0, 3, 1})
	f.Add([]byte{1, 1, 5, 1, 6, 4, 1, 5, 0, 2, 0, 2, 0, 3, 0, 3, 1})
	f.Add([]byte{0, 0, 3, 2, 0, 0, 3, 5, 0, 3, 0, 2, 0, 3, 0, 2, 0})
	f.Add([]byte{1, 0, 3, 2, 0, 0, 3, 5, 0, 3, 0, 2, 0, 3, 0, 2, 0})
	f.Add([]byte{0, 1, 17, 1, 33, 1, 49, 4, 2, 4, 2, 2, 0, 2, 0, 2, 0})
	f.Add([]byte{1, 1, 17, 1, 33, 1, 49, 4, 2, 4, 2, 2, 0, 2, 0, 2, 0})
	const keys = 4
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 400 {
			prog = prog[:400]
		}
		if len(prog) == 0 {
			return
		}
		late := prog[0]%2 == 1
		prog = prog[1:]
		synctest.Test(t, func(t *testing.T) {
			// By default the queue runs on the bubble's time, and the timer
			// callbacks due by the end of a step have run when it returns.
			var clk clock.Clock
			step := advance
			if late {
				lc := &lateClock{now: epoch}
				clk, step = lc, lc.Step
			}
			q := workqueue.New(workqueue.Config[int]{Clock: clk})
			defer q.ShutDown()
			m := newDelayModel()
			var held []int
			for i := 0; i+1 < len(prog); i += 2 {
				op, arg := prog[i]%6, int(prog[i+1])
				switch op {
				case 0:
					q.Add(arg % keys)
					m.add(arg % keys)
				case 1:
					d := time.Duration(arg/keys%4) * time.Millisecond
					q.AddAfter(arg%keys, d)
					m.addAfter(arg%keys, d)
				case 2:
					// A Get that would find nothing blocks: it is made only
					// when the model says it finds something (after moving
					// what is due, as Get does first).
					if !m.runnable() {
						if m.shut {
							if _, shutdown := q.Get(); !shutdown {
								t.Fatalf("op %d: Get after ShutDown with nothing queued did not report shutdown", i/2)
							}
						}
						continue
					}
					m.promote()
					got, shutdown := q.Get()
					if shutdown || !m.get(got) {
						t.Fatalf("op %d: Get = %d, shutdown %v; want one of %v", i/2, got, shutdown, m.fifo[0])
					}
					held = append(held, got)
				case 3:
					if len(held) == 0 {
						continue
					}
					j := arg % len(held)
					k := held[j]
					held = append(held[:j], held[j+1:]...)
					q.Done(k)
					m.done(k)
				case 4:
					d := time.Duration(arg%5) * time.Millisecond
					step(d)
					m.now += d
					if !late {
						m.promote() // the timer's callbacks ran during the step
					}
				case 5:
					q.ShutDown()
					m.shutDown()
				}
				if got, want := q.Len(), m.len(); got != want {
					t.Fatalf("op %d (%d, %d): Len = %d, want %d (model FIFO %v, waiting %v)", i/2, op, arg, got, want, m.fifo, m.waiting)
				}
			}
		})
	})
}
