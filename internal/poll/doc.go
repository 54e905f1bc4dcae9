// Package poll waits in tests for a condition to hold, with a deadline. It
// is how tests wait without sleeping to order steps: the short sleep
// between checks is a polling interval, and the deadline turns a hang into
// a failure that says what was awaited. It imports nothing from regent, so
// every test package (the exported suites included) can use it.
package poll
