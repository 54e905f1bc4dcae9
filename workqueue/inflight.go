package workqueue

// inFlight is the set of items held by workers, with when each was taken.
// It is as small as the number of workers, so up to linearMax items it is a
// plain slice searched linearly: comparing a handful of keys is cheaper than
// hashing one, and adding or removing costs no map write. Beyond that an
// index map takes over the lookups.
type inFlight[T comparable] struct {
	items  []T
	starts []int64
	index  map[T]int // nil until len(items) > linearMax
}

const linearMax = 16

func (s *inFlight[T]) len() int { return len(s.items) }

// find returns item's position, or -1.
func (s *inFlight[T]) find(item T) int {
	if s.index != nil {
		if i, ok := s.index[item]; ok {
			return i
		}
		return -1
	}
	for i, it := range s.items {
		if it == item {
			return i
		}
	}
	return -1
}

// add records item, which the caller knows is not in the set.
func (s *inFlight[T]) add(item T, start int64) {
	s.items = append(s.items, item)
	s.starts = append(s.starts, start)
	switch {
	case s.index != nil:
		s.index[item] = len(s.items) - 1
	case len(s.items) > linearMax:
		s.index = make(map[T]int, 2*linearMax)
		for i, it := range s.items {
			s.index[it] = i
		}
	}
}

// remove drops the item at position i and returns when it was taken.
func (s *inFlight[T]) remove(i int) int64 {
	start := s.starts[i]
	last := len(s.items) - 1
	if s.index != nil {
		delete(s.index, s.items[i])
		if i != last {
			s.index[s.items[last]] = i
		}
	}
	s.items[i], s.starts[i] = s.items[last], s.starts[last]
	var zero T
	s.items[last] = zero // do not keep the item alive
	s.items, s.starts = s.items[:last], s.starts[:last]
	if s.index != nil && last < linearMax/2 {
		s.index = nil // hysteresis: back to linear well below the switch
	}
	return start
}
