package informer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
)

func (inf *Informer[T]) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = inf.cfg.Backoff.Initial
	b.MaxInterval = inf.cfg.Backoff.Max
	b.MaxElapsedTime = 0 // retry for as long as Run runs
	b.Reset()
	return b
}

// sleep waits d on the configured clock, or until ctx ends.
func (inf *Informer[T]) sleep(ctx context.Context, d time.Duration) error {
	done := make(chan struct{})
	t := inf.cfg.Clock.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

// fatal reports errors Run cannot recover from by retrying.
func fatal(err error) bool { return errors.Is(err, kv.ErrClosed) }

// stream is Run's loop on a kv.Streamer: list, follow from the listed
// revision, resume from the last revision after a transient error, re-list
// after ErrCompacted.
func (inf *Informer[T]) stream(ctx context.Context) error {
	bo := inf.newBackoff()
	needList := true
	for {
		if needList {
			inf.mu.Lock()
			inf.attempts++
			first := !inf.synced
			inf.mu.Unlock()
			start := time.Now()
			snap, err := inf.streamer.Snapshot(ctx, inf.cfg.Prefix)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if fatal(err) {
					inf.fail(err)
					return fmt.Errorf("informer %s: list: %w", inf.cfg.Name, err)
				}
				inf.fail(err)
				d := bo.NextBackOff()
				inf.log.Warn("list failed; retrying", zap.Error(err), zap.Duration("backoff", d))
				if err := inf.sleep(ctx, d); err != nil {
					return err
				}
				continue
			}
			inf.replace(snap.Pairs, snap.Revision, false)
			needList = false
			if first {
				inf.log.Info("cache synced", zap.Int("keys", len(snap.Pairs)),
					zap.Uint64("revision", snap.Revision), zap.Duration("took", time.Since(start)))
			} else {
				inf.met.relist()
				inf.log.Info("re-listed", zap.Int("keys", len(snap.Pairs)), zap.Uint64("revision", snap.Revision))
			}
		}

		rev := inf.LastSyncedRevision()
		err := inf.follow(ctx, rev, bo)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case fatal(err):
			inf.fail(err)
			return fmt.Errorf("informer %s: stream: %w", inf.cfg.Name, err)
		case errors.Is(err, kv.ErrCompacted):
			// Not a failure: the history is gone, a list starts afresh.
			inf.log.Info("stream compacted: re-listing", zap.Uint64("revision", inf.LastSyncedRevision()), zap.Error(err))
			needList = true
		default:
			inf.fail(err)
			d := bo.NextBackOff()
			inf.log.Warn("stream interrupted; resuming", zap.Uint64("revision", inf.LastSyncedRevision()),
				zap.Error(err), zap.Duration("backoff", d))
			if err := inf.sleep(ctx, d); err != nil {
				return err
			}
		}
	}
}

// follow applies the stream from after rev until it ends, returning why.
func (inf *Informer[T]) follow(ctx context.Context, rev uint64, bo backoff.BackOff) error {
	ch, err := inf.streamer.Events(ctx, inf.cfg.Prefix, rev)
	if err != nil {
		return err
	}
	inf.log.Debug("following stream", zap.Uint64("after", rev))
	for b := range ch {
		if b.Err != nil {
			// Drain: the driver closes the channel right after an error.
			for range ch {
			}
			return b.Err
		}
		inf.apply(b)
		bo.Reset()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errNoStream
}

// watchTree is Run's loop on a store without kv.Streamer: every state of
// WatchTree is diffed against the cache. Deletes seen between two states
// are final; those found on the first state of a new watch are tombstones.
func (inf *Informer[T]) watchTree(ctx context.Context) error {
	bo := inf.newBackoff()
	for {
		inf.mu.Lock()
		inf.attempts++
		inf.mu.Unlock()
		err := inf.followTree(ctx, bo)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case fatal(err):
			inf.fail(err)
			return fmt.Errorf("informer %s: watch: %w", inf.cfg.Name, err)
		}
		inf.fail(err)
		d := bo.NextBackOff()
		inf.log.Warn("watch interrupted; re-watching", zap.Error(err), zap.Duration("backoff", d))
		if err := inf.sleep(ctx, d); err != nil {
			return err
		}
	}
}

func (inf *Informer[T]) followTree(ctx context.Context, bo backoff.BackOff) error {
	ch, err := inf.store.WatchTree(ctx, inf.cfg.Prefix, nil)
	if err != nil {
		return err
	}
	first := true
	for u := range ch {
		if u.Err != nil {
			for range ch {
			}
			return u.Err
		}
		wasSynced := inf.HasSynced()
		inf.replace(u.Pairs, u.Revision, !first)
		if first {
			if wasSynced {
				inf.met.relist()
				inf.log.Info("re-listed", zap.Int("keys", len(u.Pairs)))
			} else {
				inf.log.Info("cache synced", zap.Int("keys", len(u.Pairs)))
			}
		}
		first = false
		bo.Reset()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errNoStream
}
