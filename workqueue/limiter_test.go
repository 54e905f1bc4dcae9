package workqueue_test

import (
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regentkv/regent/workqueue"
)

func TestExponential(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := workqueue.Exponential[string](time.Millisecond, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		want := []time.Duration{1, 2, 4, 8, 10, 10}
		for i, w := range want {
			if got := l.When("a"); got != w*time.Millisecond {
				t.Fatalf("When #%d = %v, want %v", i+1, got, w*time.Millisecond)
			}
		}
		if got := l.NumRequeues("a"); got != len(want) {
			t.Fatalf("NumRequeues = %d, want %d", got, len(want))
		}
		if got := l.When("b"); got != time.Millisecond {
			t.Fatalf("When(b) = %v, want 1ms: items back off independently", got)
		}
		l.Forget("a")
		if got := l.NumRequeues("a"); got != 0 {
			t.Fatalf("NumRequeues after Forget = %d, want 0", got)
		}
		if got := l.When("a"); got != time.Millisecond {
			t.Fatalf("When after Forget = %v, want 1ms", got)
		}
	})
}

func TestExponentialNoOverflow(t *testing.T) {
	l, err := workqueue.Exponential[int](time.Nanosecond, time.Duration(math.MaxInt64))
	if err != nil {
		t.Fatal(err)
	}
	var last time.Duration
	for i := range 200 {
		d := l.When(1)
		if d < last {
			t.Fatalf("When #%d = %v, below the previous %v (overflow)", i+1, d, last)
		}
		last = d
	}
	if last != time.Duration(math.MaxInt64) {
		t.Fatalf("last delay = %v, want the cap", last)
	}
}

// client-go keeps an entry per item until Forget: a reconciler that misses
// one Forget leaks it forever. Here idle entries expire.
func TestPerItemStateExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxDelay = time.Minute
		l, err := workqueue.Exponential[int](time.Millisecond, maxDelay)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10000 {
			l.When(i) // never forgotten
		}
		if got := l.Tracked(); got != 10000 {
			t.Fatalf("Tracked = %d, want 10000", got)
		}
		time.Sleep(2 * maxDelay)
		l.When(-1)
		if got := l.Tracked(); got != 10001 {
			t.Fatalf("Tracked at exactly the TTL = %d, want 10001 (nothing expired yet)", got)
		}
		time.Sleep(time.Nanosecond)
		if got := l.Tracked(); got != 1 {
			t.Fatalf("Tracked after the TTL = %d, want 1: idle entries must be dropped", got)
		}
		if got := l.NumRequeues(5); got != 0 {
			t.Fatalf("NumRequeues of an expired item = %d, want 0", got)
		}
		if got := l.When(5); got != time.Millisecond {
			t.Fatalf("When of an expired item = %v, want the base delay", got)
		}
	})
}

func TestFastSlowStateExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := workqueue.FastSlow[int](time.Millisecond, time.Hour, 2)
		if err != nil {
			t.Fatal(err)
		}
		l.When(1)
		time.Sleep(2*time.Hour + 1)
		if got := l.Tracked(); got != 0 {
			t.Fatalf("Tracked = %d, want 0", got)
		}
	})
}

func TestWithMaxTrackedEvictsLeastRecentlyFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := workqueue.Exponential[string](time.Millisecond, time.Second, workqueue.WithMaxTracked(2))
		if err != nil {
			t.Fatal(err)
		}
		l.When("a")
		l.When("b")
		l.When("a") // a is now the most recent
		l.When("c") // evicts b
		if got := l.Tracked(); got != 2 {
			t.Fatalf("Tracked = %d, want 2", got)
		}
		for item, want := range map[string]int{"a": 2, "b": 0, "c": 1} {
			if got := l.NumRequeues(item); got != want {
				t.Errorf("NumRequeues(%s) = %d, want %d", item, got, want)
			}
		}
	})
}

func TestFastSlow(t *testing.T) {
	l, err := workqueue.FastSlow[string](time.Millisecond, time.Second, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := l.When("a"); got != w {
			t.Fatalf("When #%d = %v, want %v", i+1, got, w)
		}
	}
	if got := l.NumRequeues("a"); got != 5 {
		t.Fatalf("NumRequeues = %d, want 5", got)
	}
	l.Forget("a")
	if got := l.When("a"); got != time.Millisecond {
		t.Fatalf("When after Forget = %v, want fast", got)
	}
}

func TestBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := workqueue.Bucket[string](10, 2)
		if err != nil {
			t.Fatal(err)
		}
		got := []time.Duration{l.When("a"), l.When("b"), l.When("c"), l.When("d")}
		want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("When #%d = %v, want %v (all: %v)", i+1, got[i], want[i], got)
			}
		}
		time.Sleep(time.Second) // refills the bucket
		if d := l.When("e"); d != 0 {
			t.Fatalf("When after refill = %v, want 0", d)
		}
		if n := l.NumRequeues("a"); n != 0 {
			t.Fatalf("NumRequeues = %d, want 0 (no per-item state)", n)
		}
	})
}

func TestMaxOf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exp, _ := workqueue.Exponential[string](time.Millisecond, time.Second)
		fs, _ := workqueue.FastSlow[string](5*time.Millisecond, 10*time.Second, 3)
		l, err := workqueue.MaxOf[string](exp, fs)
		if err != nil {
			t.Fatal(err)
		}
		want := []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 10 * time.Second}
		for i, w := range want {
			if got := l.When("a"); got != w {
				t.Fatalf("When #%d = %v, want %v", i+1, got, w)
			}
		}
		if got := l.NumRequeues("a"); got != 4 {
			t.Fatalf("NumRequeues = %d, want 4", got)
		}
		l.Forget("a")
		if exp.NumRequeues("a") != 0 || fs.NumRequeues("a") != 0 {
			t.Fatal("Forget did not reach every limiter")
		}
	})
}

func TestDefaultRateLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := workqueue.DefaultRateLimiter[string]()
		if err != nil {
			t.Fatal(err)
		}
		if got := l.When("a"); got != 5*time.Millisecond {
			t.Fatalf("first When = %v, want 5ms", got)
		}
		if got := l.When("a"); got != 10*time.Millisecond {
			t.Fatalf("second When = %v, want 10ms", got)
		}
		// The bucket (burst 100, 10/s) takes over for a burst of distinct items.
		var last time.Duration
		for i := range 200 {
			last = l.When(string(rune('A' + i)))
		}
		if last < 9*time.Second {
			t.Fatalf("200th distinct retry waits %v, want ~10s from the bucket", last)
		}
	})
}

func TestInvalidLimiters(t *testing.T) {
	tests := []struct {
		name  string
		build func() error
	}{
		{"exponential negative base", func() error {
			_, err := workqueue.Exponential[int](-1, time.Second)
			return err
		}},
		{"exponential max below base", func() error {
			_, err := workqueue.Exponential[int](time.Second, time.Millisecond)
			return err
		}},
		{"exponential negative cap", func() error {
			_, err := workqueue.Exponential[int](0, time.Second, workqueue.WithMaxTracked(-1))
			return err
		}},
		{"exponential nil clock", func() error {
			_, err := workqueue.Exponential[int](0, time.Second, workqueue.WithClock(nil))
			return err
		}},
		{"fastslow slow below fast", func() error {
			_, err := workqueue.FastSlow[int](time.Second, time.Millisecond, 1)
			return err
		}},
		{"fastslow negative attempts", func() error {
			_, err := workqueue.FastSlow[int](0, time.Second, -1)
			return err
		}},
		{"bucket zero qps", func() error {
			_, err := workqueue.Bucket[int](0, 1)
			return err
		}},
		{"bucket NaN qps", func() error {
			_, err := workqueue.Bucket[int](math.NaN(), 1)
			return err
		}},
		{"bucket zero burst", func() error {
			_, err := workqueue.Bucket[int](1, 0)
			return err
		}},
		{"default nil clock", func() error {
			_, err := workqueue.DefaultRateLimiter[int](workqueue.WithClock(nil))
			return err
		}},
		{"maxof empty", func() error {
			_, err := workqueue.MaxOf[int]()
			return err
		}},
		{"maxof nil", func() error {
			_, err := workqueue.MaxOf[int](nil)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.build(); !errors.Is(err, workqueue.ErrInvalidLimiter) {
				t.Fatalf("err = %v, want ErrInvalidLimiter", err)
			}
		})
	}
	if _, err := workqueue.Bucket[int](math.Inf(1), 1); err != nil {
		t.Fatalf("Bucket(+Inf) = %v, want nil (no limit)", err)
	}
}

func TestAddRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := workqueue.Exponential[string](time.Second, time.Minute)
		q := workqueue.New(workqueue.Config[string]{RateLimiter: l})
		defer q.ShutDown()

		for attempt, delay := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			q.AddRateLimited("a")
			advance(delay - 1)
			if n := q.Len(); n != 0 {
				t.Fatalf("attempt %d: Len before %v = %d, want 0", attempt+1, delay, n)
			}
			advance(1)
			if n := q.Len(); n != 1 {
				t.Fatalf("attempt %d: Len at %v = %d, want 1", attempt+1, delay, n)
			}
			q.Done(mustGet(t, q))
			if got := q.NumRequeues("a"); got != attempt+1 {
				t.Fatalf("NumRequeues = %d, want %d", got, attempt+1)
			}
		}
		q.Forget("a")
		if got := q.NumRequeues("a"); got != 0 {
			t.Fatalf("NumRequeues after Forget = %d, want 0", got)
		}
	})
}
