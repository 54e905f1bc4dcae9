package informer

import "errors"

// Sentinel errors of the package, wrapped with %w: match them with errors.Is.
var (
	// ErrInvalidConfig: New was given a Config it cannot run with; the
	// message names the field.
	ErrInvalidConfig = errors.New("informer: invalid config")
	// ErrAlreadyRunning: Run was called a second time.
	ErrAlreadyRunning = errors.New("informer: Run already called")
	// ErrStopped: the informer's Run has returned; it takes no new handlers.
	ErrStopped = errors.New("informer: stopped")
	// ErrNotSynced: WaitForCacheSync or WaitForRevision gave up; the error
	// also wraps the ctx error and, when there is one, the last list or
	// stream error, saying why.
	ErrNotSynced = errors.New("informer: cache not synced")
	// ErrStale: Check found the cache synced once but not following the
	// store now; the error says since when and why.
	ErrStale = errors.New("informer: cache stale")
	// ErrDecode: Decode or Transform failed for a key; such errors reach
	// Config.OnError wrapped with the key.
	ErrDecode = errors.New("informer: cannot decode value")
	// ErrIndex: an IndexFunc failed; the object is cached but not indexed
	// under that index.
	ErrIndex = errors.New("informer: index function failed")
	// ErrUnknownIndex: ByIndex or IndexKeys named an index not in Config.Indexers.
	ErrUnknownIndex = errors.New("informer: unknown index")
)
