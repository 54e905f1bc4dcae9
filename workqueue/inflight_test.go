package workqueue

import (
	"math/rand/v2"
	"testing"
)

func TestInFlightSetAcrossLinearAndIndexedModes(t *testing.T) {
	var s inFlight[int]
	want := map[int]int64{}
	r := rand.New(rand.NewPCG(1, 2))
	check := func() {
		t.Helper()
		if s.len() != len(want) {
			t.Fatalf("len = %d, want %d", s.len(), len(want))
		}
		for item, start := range want {
			i := s.find(item)
			if i < 0 || s.starts[i] != start {
				t.Fatalf("find(%d) = %d, want the position of start %d", item, i, start)
			}
		}
		if s.find(-1) != -1 {
			t.Fatal("find of an absent item succeeded")
		}
	}
	sawIndexed := false
	for round := range 2000 {
		if len(want) < 3*linearMax && (len(want) == 0 || r.IntN(2) == 0) {
			item := round
			s.add(item, int64(item)*10)
			want[item] = int64(item) * 10
		} else {
			for item, start := range want { // remove one at random
				if got := s.remove(s.find(item)); got != start {
					t.Fatalf("remove(%d) = %d, want %d", item, got, start)
				}
				delete(want, item)
				break
			}
		}
		sawIndexed = sawIndexed || s.index != nil
		if len(want) < linearMax/2 && s.index != nil {
			t.Fatalf("index kept with %d items", len(want))
		}
		check()
	}
	if !sawIndexed {
		t.Fatal("never switched to the indexed mode")
	}
}
