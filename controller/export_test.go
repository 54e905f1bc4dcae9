package controller

import "time"

// SetSyncProgressEvery sets how often Run logs while waiting for its
// caches, for a test; it returns a func that restores the default.
func SetSyncProgressEvery(d time.Duration) func() {
	old := syncProgressEvery
	syncProgressEvery = d
	return func() { syncProgressEvery = old }
}
