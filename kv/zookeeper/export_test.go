package zookeeper

// ConnectedServer is the member the Store's connection talks to now, for
// tests that take that member away.
func ConnectedServer(s *Store) string { return s.conn.Server() }
