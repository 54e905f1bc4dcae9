package workqueue_test

import (
	"math/rand/v2"
	"testing"
)

// model is the queue's contract written the obvious way.
type model struct {
	fifo       []int
	queued     map[int]bool
	processing map[int]bool
	redo       map[int]bool
}

func (m *model) add(k int) {
	switch {
	case m.processing[k]:
		m.redo[k] = true
	case !m.queued[k]:
		m.queued[k] = true
		m.fifo = append(m.fifo, k)
	}
}

func (m *model) get() int {
	k := m.fifo[0]
	m.fifo = m.fifo[1:]
	delete(m.queued, k)
	m.processing[k] = true
	return k
}

func (m *model) done(k int) {
	delete(m.processing, k)
	if m.redo[k] {
		delete(m.redo, k)
		m.add(k)
	}
}

// The queue against the model over random operations, in phases that fill
// it, keep it busy without ever emptying (so stale bookkeeping must be swept)
// and drain it, over key spaces small (many collapses) and large.
func TestAgainstModel(t *testing.T) {
	for _, keys := range []int{8, 300, 20000} {
		q := newQueue[int]()
		m := &model{queued: map[int]bool{}, processing: map[int]bool{}, redo: map[int]bool{}}
		r := rand.New(rand.NewPCG(uint64(keys), 7))
		var held []int
		step := func(pAdd, pDone float64) {
			switch x := r.Float64(); {
			case x < pAdd:
				k := r.IntN(keys)
				q.Add(k)
				m.add(k)
			case x < pAdd+pDone && len(held) > 0:
				i := r.IntN(len(held))
				k := held[i]
				held = append(held[:i], held[i+1:]...)
				q.Done(k)
				m.done(k)
			case len(m.fifo) > 0:
				want := m.get()
				got, shutdown := q.Get()
				if shutdown || got != want {
					t.Fatalf("keys=%d: Get = %d, %v; want %d", keys, got, shutdown, want)
				}
				held = append(held, got)
			}
			if got, want := q.Len(), len(m.fifo); got != want {
				t.Fatalf("keys=%d: Len = %d, want %d", keys, got, want)
			}
		}
		for range 20000 { // fill
			step(0.6, 0.2)
		}
		for range 60000 { // busy: adds keep up with gets
			step(0.4, 0.3)
			if len(m.fifo) == 0 {
				k := r.IntN(keys)
				q.Add(k)
				m.add(k)
			}
		}
		for len(m.fifo) > 0 || len(held) > 0 { // drain
			step(0, 0.5)
		}
		q.ShutDown()
	}
}
