// Package clock is the module's one source of time for code that must be
// testable with fake time: the workqueue's delays and rate limits, the
// informer's backoff, resync and health checks, the controller's queue,
// and kv/memory's TTL expiry. Every package takes a Clock in its Config
// or options and defaults to Real().
//
// Prefer testing/synctest over a fake Clock for code that runs wholly in
// process: inside a bubble, package time itself is fake. A fake Clock
// (clocktest.Fake) is for what a bubble cannot hold, such as an informer
// on a real server, whose network I/O would keep the bubble's time from
// moving.
//
// Guarantees: Real() is package time, unchanged; a Clock is safe for
// concurrent use, and so is every Timer it returns.
package clock
