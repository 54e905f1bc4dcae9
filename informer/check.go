package informer

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Check reports whether the cache is following the store, for a readiness
// probe: nil when it has synced and has heard from the store (a change or a
// progress notice) within Config.StaleAfter with no stream error since. The
// cache keeps serving its last state either way; Check says whether that
// state may be behind. Otherwise the error wraps ErrNotSynced (never synced,
// or Run not running) or ErrStale, with the last list or stream error; or,
// with Config.KeepLastGood, ErrDecode while keys are served from a value
// older than the one stored, because the stored one does not decode.
func (inf *Informer[T]) Check() error {
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	switch {
	case !inf.running:
		return fmt.Errorf("%w: informer %s is not running", ErrNotSynced, inf.cfg.Name)
	case !inf.synced && inf.lastErr != nil:
		return fmt.Errorf("%w: informer %s: no successful list yet (%d attempts): %w",
			ErrNotSynced, inf.cfg.Name, inf.attempts, inf.lastErr)
	case !inf.synced:
		return fmt.Errorf("%w: informer %s: first list in progress", ErrNotSynced, inf.cfg.Name)
	}
	since := inf.cfg.Clock.Now().Sub(inf.heard).Round(time.Millisecond)
	switch {
	case inf.lastErr != nil:
		return fmt.Errorf("%w: informer %s at revision %d, last heard from the store %v ago: %w",
			ErrStale, inf.cfg.Name, inf.rev, since, inf.lastErr)
	case inf.streamer != nil && since > inf.cfg.StaleAfter:
		return fmt.Errorf("%w: informer %s at revision %d: no word from the store for %v (StaleAfter %v)",
			ErrStale, inf.cfg.Name, inf.rev, since, inf.cfg.StaleAfter)
	case len(inf.badKeys) > 0:
		keys := slices.Sorted(maps.Keys(inf.badKeys))
		if len(keys) > 10 {
			keys = append(keys[:10], "...")
		}
		first := slices.Min(slices.Collect(maps.Keys(inf.badKeys)))
		return fmt.Errorf("informer %s serves the last good object of %d key(s) whose stored value does not decode (KeepLastGood): %s: %w",
			inf.cfg.Name, len(inf.badKeys), strings.Join(keys, ", "), inf.badKeys[first])
	}
	return nil
}

// Name returns Config.Name (the prefix by default), which labels the
// informer's logs and metrics.
func (inf *Informer[T]) Name() string { return inf.cfg.Name }
