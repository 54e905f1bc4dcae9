// Package informertest is the informer suite run against every driver:
// Run(t, Harness) checks, on one backend, what the informer package
// promises (initial sync, per-key order, bounded slow handlers, late
// handlers, Remove, resync, re-list with tombstones after compaction,
// server restart, random writers, read-your-writes).
//
// Each case runs on its own prefix with its own deadline and waits on
// conditions, never on sleeps. The suite starts goroutines (informers,
// writers) and stops them all before each case returns, so driver packages
// can keep goleak.VerifyTestMain.
package informertest
