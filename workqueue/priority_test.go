package workqueue_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/workqueue"
)

type prioGot struct {
	item string
	prio int
}

// getAll takes n items with their priorities, marking each Done.
func getAll(t *testing.T, q *workqueue.Queue[string], n int) []prioGot {
	t.Helper()
	var out []prioGot
	for range n {
		item, prio, shutdown := q.GetWithPriority()
		if shutdown {
			t.Fatalf("shutdown after %v", out)
		}
		out = append(out, prioGot{item, prio})
		q.Done(item)
	}
	return out
}

// Highest priority first, FIFO within one priority; Add is priority 0.
func TestPriorityOrder(t *testing.T) {
	q := newQueue[string]()
	defer q.ShutDown()
	q.Add("a")
	q.AddWithOpts(workqueue.AddOpts{Priority: workqueue.LowPriority}, "b")
	q.AddWithOpts(workqueue.AddOpts{Priority: 10}, "c")
	q.Add("d")
	q.AddWithOpts(workqueue.AddOpts{Priority: 10}, "e", "f")
	q.AddWithOpts(workqueue.AddOpts{Priority: 5}, "g")
	if q.Len() != 7 {
		t.Fatalf("Len = %d, want 7", q.Len())
	}
	got := getAll(t, q, 7)
	want := []prioGot{{"c", 10}, {"e", 10}, {"f", 10}, {"g", 5}, {"a", 0}, {"d", 0}, {"b", workqueue.LowPriority}}
	if !slices.Equal(got, want) {
		t.Fatalf("handed out %v, want %v", got, want)
	}
}

// A re-add of a pending item keeps the higher priority and collapses: the
// item is handed out once, from the back of the higher priority's FIFO;
// a re-add at a lower priority changes nothing.
func TestPriorityReAddKeepsTheHigher(t *testing.T) {
	q := newQueue[string]()
	defer q.ShutDown()
	low := workqueue.AddOpts{Priority: workqueue.LowPriority}
	q.AddWithOpts(low, "x", "y", "z")
	q.Add("n")
	q.Add("y")              // raised: behind n
	q.AddWithOpts(low, "n") // lower: n stays at 0
	q.Add("y")              // already at 0: nothing
	if q.Len() != 4 {
		t.Fatalf("Len = %d, want 4 (a raised item counts once)", q.Len())
	}
	got := getAll(t, q, 4)
	want := []prioGot{{"n", 0}, {"y", 0}, {"x", workqueue.LowPriority}, {"z", workqueue.LowPriority}}
	if !slices.Equal(got, want) {
		t.Fatalf("handed out %v, want %v", got, want)
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d after all were handed out, want 0", q.Len())
	}
	// The stale slot of y at the low priority is gone for good: y added
	// again at low priority comes out once.
	q.AddWithOpts(low, "y")
	if got := getAll(t, q, 1); got[0] != (prioGot{"y", workqueue.LowPriority}) {
		t.Fatalf("got %v", got)
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d, want 0", q.Len())
	}
}

// An item added while a worker holds it is queued again after Done, once,
// at the highest priority it was added at meanwhile; it is never handed to
// a second worker while the first holds it.
func TestPriorityWhileProcessing(t *testing.T) {
	q := newQueue[string]()
	defer q.ShutDown()
	q.Add("k")
	item, _ := q.Get()
	q.AddWithOpts(workqueue.AddOpts{Priority: workqueue.LowPriority}, "k")
	q.AddWithOpts(workqueue.AddOpts{Priority: 3}, "k")
	q.Add("k")
	q.AddWithOpts(workqueue.AddOpts{Priority: 1}, "other")
	if got := getAll(t, q, 1); got[0] != (prioGot{"other", 1}) {
		t.Fatalf("while k is held, got %v; want other (k must wait for Done)", got)
	}
	q.Done(item)
	if got := getAll(t, q, 1); got[0] != (prioGot{"k", 3}) {
		t.Fatalf("after Done got %v, want k at 3", got)
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d, want 0 (k queued again once)", q.Len())
	}
}

// A delayed item becomes runnable at its priority when due; a second delay
// keeps the earlier due time and the higher priority.
func TestPriorityDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue[string]()
		defer q.ShutDown()
		q.AddWithOpts(workqueue.AddOpts{After: time.Second, Priority: workqueue.LowPriority}, "late")
		q.AddWithOpts(workqueue.AddOpts{After: 2 * time.Second, Priority: 7}, "late") // higher priority, later: keeps 1 s
		q.AddWithOpts(workqueue.AddOpts{After: time.Second}, "plain")
		q.Add("now")
		if got := getAll(t, q, 1); got[0].item != "now" {
			t.Fatalf("got %v, want now", got)
		}
		advance(time.Second)
		q.Add("after")
		got := getAll(t, q, 3)
		want := []prioGot{{"late", 7}, {"plain", 0}, {"after", 0}}
		if !slices.Equal(got, want) {
			t.Fatalf("at 1 s handed out %v, want %v", got, want)
		}
		advance(2 * time.Second)
		if q.Len() != 0 {
			t.Fatalf("Len = %d at 3 s, want 0 (the later delay was dropped)", q.Len())
		}
		// An item waiting at a high priority keeps it when added again
		// with a delay at a lower one.
		q.AddWithOpts(workqueue.AddOpts{After: time.Second, Priority: 4}, "w")
		q.AddWithOpts(workqueue.AddOpts{After: time.Millisecond, Priority: workqueue.LowPriority}, "w")
		q.AddWithOpts(workqueue.AddOpts{Priority: 1}, "x")
		advance(time.Millisecond)
		got = getAll(t, q, 2)
		want = []prioGot{{"w", 4}, {"x", 1}}
		if !slices.Equal(got, want) {
			t.Fatalf("handed out %v, want %v", got, want)
		}
	})
}

// RateLimited waits for the limiter's delay (and counts a requeue), then
// the item runs at its priority.
func TestPriorityRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue[string]()
		defer q.ShutDown()
		q.AddWithOpts(workqueue.AddOpts{RateLimited: true, Priority: 2}, "r")
		if q.NumRequeues("r") != 1 {
			t.Fatalf("NumRequeues = %d, want 1", q.NumRequeues("r"))
		}
		if q.Len() != 0 {
			t.Fatal("a rate-limited item was runnable at once")
		}
		q.Add("p")
		advance(time.Second) // the default limiter's first delay is 5 ms
		if got := getAll(t, q, 2); !slices.Equal(got, []prioGot{{"r", 2}, {"p", 0}}) {
			t.Fatalf("got %v", got)
		}
		// After and RateLimited: the longer delay wins.
		q.AddWithOpts(workqueue.AddOpts{RateLimited: true, After: time.Minute}, "s")
		advance(time.Second)
		if q.Len() != 0 {
			t.Fatal("After was not honoured beside RateLimited")
		}
		advance(time.Minute)
		if q.Len() != 1 {
			t.Fatalf("Len = %d after the minute, want 1", q.Len())
		}
	})
}

// Drain waits for raised items too, and a raised item's stale slot is no
// work: Drain returns once the real items are done.
func TestPriorityDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue[string]()
		q.AddWithOpts(workqueue.AddOpts{Priority: workqueue.LowPriority}, "a", "b")
		q.Add("b") // raised: a stale slot stays at the low priority
		drained := make(chan error, 1)
		go func() { drained <- q.Drain(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-drained:
			t.Fatalf("Drain returned %v with two items queued", err)
		default:
		}
		got := getAll(t, q, 2)
		if !slices.Equal(got, []prioGot{{"b", 0}, {"a", workqueue.LowPriority}}) {
			t.Fatalf("got %v", got)
		}
		if err := <-drained; err != nil {
			t.Fatal(err)
		}
		if _, _, shutdown := q.GetWithPriority(); !shutdown {
			t.Fatal("Get after Drain: want shutdown (the stale slot is not an item)")
		}
	})
}

// More distinct priorities than the queue has levels: every item is still
// handed out exactly once, and never before one of a clearly higher
// priority.
func TestPriorityBeyondTheLevels(t *testing.T) {
	q := newQueue[int]()
	defer q.ShutDown()
	const n = 600
	for i := range n {
		q.AddWithOpts(workqueue.AddOpts{Priority: i - n/2}, i)
	}
	seen := map[int]bool{}
	last := n
	for range n {
		item, prio, _ := q.GetWithPriority()
		if seen[item] {
			t.Fatalf("%d handed out twice", item)
		}
		seen[item] = true
		if prio > last {
			t.Fatalf("priority %d after %d", prio, last)
		}
		last = prio
		q.Done(item)
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d, want 0", q.Len())
	}
}

// countingMetrics counts Add calls: the queue's depth.
type countingMetrics struct{ adds, gets atomic.Int64 }

func (m *countingMetrics) Add()               { m.adds.Add(1) }
func (m *countingMetrics) Get(time.Duration)  { m.gets.Add(1) }
func (m *countingMetrics) Done(time.Duration) {}
func (m *countingMetrics) Retry()             {}
func (m *countingMetrics) depth() int64       { return m.adds.Load() - m.gets.Load() }
func (m *countingMetrics) check(t *testing.T, want int64) {
	t.Helper()
	if d := m.depth(); d != want {
		t.Fatalf("depth by metrics = %d, want %d", d, want)
	}
}

// A raised item is one item to the metrics: depth counts it once.
func TestPriorityMetricsDepth(t *testing.T) {
	m := &countingMetrics{}
	q := workqueue.New(workqueue.Config[string]{Metrics: m})
	defer q.ShutDown()
	q.AddWithOpts(workqueue.AddOpts{Priority: workqueue.LowPriority}, "a")
	q.Add("a")
	q.AddWithOpts(workqueue.AddOpts{Priority: 9}, "a")
	m.check(t, 1)
	getAll(t, q, 1)
	m.check(t, 0)
}

// prioModel is the priority queue's contract written the obvious way.
type prioModel struct {
	seq        int
	queued     map[int][2]int // key -> {priority, sequence}
	processing map[int]bool
	redo       map[int]int // key -> priority
}

func (m *prioModel) add(k, p int) {
	switch {
	case m.processing[k]:
		if cur, ok := m.redo[k]; !ok || p > cur {
			m.redo[k] = p
		}
	default:
		if cur, ok := m.queued[k]; ok && cur[0] >= p {
			return
		}
		m.seq++
		m.queued[k] = [2]int{p, m.seq}
	}
}

func (m *prioModel) next() (int, int) {
	best, bp, bs := -1, 0, 0
	for k, v := range m.queued {
		if best < 0 || v[0] > bp || (v[0] == bp && v[1] < bs) {
			best, bp, bs = k, v[0], v[1]
		}
	}
	return best, bp
}

func (m *prioModel) get() (int, int) {
	k, p := m.next()
	delete(m.queued, k)
	m.processing[k] = true
	return k, p
}

func (m *prioModel) done(k int) {
	delete(m.processing, k)
	if p, ok := m.redo[k]; ok {
		delete(m.redo, k)
		m.add(k, p)
	}
}

// The queue against the model over random adds at random priorities,
// Gets and Dones, filling, staying busy (stale slots and entries must be
// swept) and draining.
func TestPriorityAgainstModel(t *testing.T) {
	prios := []int{workqueue.LowPriority, 0, 0, 5}
	for _, keys := range []int{6, 200, 5000} {
		seed := uint64(keys)
		t.Logf("keys %d, seed %d", keys, seed)
		q := newQueue[int]()
		m := &prioModel{queued: map[int][2]int{}, processing: map[int]bool{}, redo: map[int]int{}}
		r := rand.New(rand.NewPCG(seed, 11))
		var held []int
		step := func(pAdd, pDone float64) {
			switch x := r.Float64(); {
			case x < pAdd:
				k, p := r.IntN(keys), prios[r.IntN(len(prios))]
				q.AddWithOpts(workqueue.AddOpts{Priority: p}, k)
				m.add(k, p)
			case x < pAdd+pDone && len(held) > 0:
				i := r.IntN(len(held))
				k := held[i]
				held = append(held[:i], held[i+1:]...)
				q.Done(k)
				m.done(k)
			case len(m.queued) > 0:
				wk, wp := m.get()
				got, gp, shutdown := q.GetWithPriority()
				if shutdown || got != wk || gp != wp {
					t.Fatalf("keys=%d: Get = %d at %d (shutdown %v); want %d at %d", keys, got, gp, shutdown, wk, wp)
				}
				held = append(held, got)
			}
			if got, want := q.Len(), len(m.queued); got != want {
				t.Fatalf("keys=%d: Len = %d, want %d", keys, got, want)
			}
		}
		for range 10000 {
			step(0.6, 0.2)
		}
		for range 30000 {
			step(0.4, 0.3)
		}
		for len(m.queued) > 0 || len(held) > 0 {
			step(0, 0.5)
		}
		q.ShutDown()
	}
}

// Priorities at the ends of int order like any others.
func TestPriorityExtremes(t *testing.T) {
	q := newQueue[string]()
	defer q.ShutDown()
	q.AddWithOpts(workqueue.AddOpts{Priority: math.MinInt}, "min")
	q.AddWithOpts(workqueue.AddOpts{Priority: math.MaxInt}, "max")
	q.Add("zero")
	q.AddWithOpts(workqueue.AddOpts{Priority: math.MinInt + 1}, "min+1")
	q.AddWithOpts(workqueue.AddOpts{Priority: math.MaxInt - 1}, "max-1")
	for _, want := range []string{"max", "max-1", "zero", "min+1", "min"} {
		item, _, _ := q.GetWithPriority()
		if item != want {
			t.Fatalf("Get = %q, want %q", item, want)
		}
		q.Done(item)
	}
}
