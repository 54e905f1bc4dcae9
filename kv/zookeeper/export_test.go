package zookeeper

// Compact is the tests' way to make s forget its client-side history up
// to rev (see compact): the conformance suite's Harness.Compact.
func Compact(s *Store, rev uint64) { s.compact(rev) }
