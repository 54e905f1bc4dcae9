// Package clocktest provides Fake, a manually driven clock.Clock for
// deterministic tests of code that takes one (a workqueue, an informer, a
// memory backend): delays, rate limits and TTLs elapse when the test says
// so, not when the wall clock does.
//
// A Fake is safe for concurrent use. Timer callbacks never run inside Now,
// AfterFunc, Stop or Reset (callers hold their locks around those); they
// run synchronously inside Step and Set, on the caller's goroutine, in due
// order, each seeing Now equal to its due time, so when Step returns every
// callback due by then has completed.
//
// Not provided: real-time behaviour. Nothing happens until the test calls
// Step or Set.
package clocktest
