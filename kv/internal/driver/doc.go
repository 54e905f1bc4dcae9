// Package driver holds the half of a kv driver that does not talk to a
// backend, so that every driver decides it the same way: how a watch or
// stream hands its updates, its last one included, to the reader, and
// when two listings are the same. A driver keeps only what talks to its
// backend.
//
// Guarantees: every function is safe for concurrent use; Send and
// SendLast never block past their ctx, and SendLast never past CloseGrace.
package driver
