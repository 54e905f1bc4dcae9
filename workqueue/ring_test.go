package workqueue

import "testing"

func TestRingOrderAcrossGrowWrapAndShrink(t *testing.T) {
	for _, timed := range []bool{false, true} {
		r := ring[int]{timed: timed}
		next, want := 0, 0
		push := func(n int) {
			for range n {
				r.push(next, int64(next)*10)
				next++
			}
		}
		pop := func(n int) {
			for range n {
				item, at := r.pop()
				if item != want {
					t.Fatalf("timed=%v: pop = %d, want %d", timed, item, want)
				}
				if wantAt := int64(want) * 10; timed && at != wantAt {
					t.Fatalf("timed=%v: time of %d = %d, want %d", timed, item, at, wantAt)
				}
				want++
			}
		}
		push(10)
		pop(7)
		push(5000) // grows while wrapped
		pop(4990)
		push(3)
		pop(r.len())
		if r.len() != 0 {
			t.Fatalf("len = %d, want 0", r.len())
		}
		r.release()
		push(20)
		pop(20)
	}
}
