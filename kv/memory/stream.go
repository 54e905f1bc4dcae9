package memory

import (
	"context"
	"fmt"

	"github.com/regentkv/regent/clock"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// maxBatch caps the events of one batch (a revision is never split), so a
// subscriber far behind catches up in bounded steps.
const maxBatch = 256

// Snapshot implements kv.Streamer.
func (s *Store) Snapshot(ctx context.Context, prefix string) (kv.Snapshot, error) {
	p, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return kv.Snapshot{}, fmt.Errorf("memory: snapshot: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return kv.Snapshot{}, err
	}
	defer s.b.mu.Unlock()
	return kv.Snapshot{Pairs: s.b.listLocked(p), Revision: s.b.rev}, nil
}

// Revision implements kv.Streamer.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.b.mu.Unlock()
	return s.b.rev, nil
}

// Events implements kv.Streamer. The subscription reads the backend's
// history at its own pace: a slow reader never holds up writers or other
// subscribers, and gets ErrCompacted if the history limit (or Compact)
// overtakes it.
func (s *Store) Events(ctx context.Context, prefix string, after uint64) (<-chan kv.EventBatch, error) {
	p, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("memory: events: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	ch := make(chan kv.EventBatch)
	s.goroutines.Go(func() { s.events(ctx, p, after, ch) })
	s.b.mu.Unlock()
	return ch, nil
}

func (s *Store) events(ctx context.Context, p string, pos uint64, ch chan<- kv.EventBatch) {
	defer close(ch)
	end := func(err error) kv.EventBatch { return kv.EventBatch{Revision: pos, Err: err} }
	tick := make(chan struct{}, 1)
	arm := func() clock.Timer {
		return s.b.opts.clock.AfterFunc(s.b.opts.progressInterval, func() {
			select {
			case tick <- struct{}{}:
			default:
			}
		})
	}
	timer := arm()
	defer func() { timer.Stop() }()
	for {
		var evs []kv.Event
		s.b.mu.Lock()
		wake := s.b.changed
		if pos < s.b.compacted {
			err := compactedErr(pos, s.b.compacted)
			s.b.mu.Unlock()
			// Not a shutdown: wait for the reader as long as it wants.
			send(ctx, s, ch, kv.EventBatch{Revision: pos, Err: err}, end)
			return
		}
		next := s.b.rev
		hist := s.b.hist[s.b.sinceLocked(pos):]
		for i, r := range hist {
			if len(evs) >= maxBatch && r.rev != hist[i-1].rev {
				next = hist[i-1].rev
				wake = nil // more is pending: do not wait
				break
			}
			if !kv.IsBelow(r.key, p) {
				continue
			}
			ev := kv.Event{Type: kv.EventPut, Pair: clonePair(r.pair)}
			if r.pair == nil {
				ev = kv.Event{Type: kv.EventDelete, Pair: &kv.KVPair{Key: r.key, Revision: r.rev}}
			}
			evs = append(evs, ev)
		}
		s.b.mu.Unlock()
		pos = max(pos, next)
		if len(evs) > 0 {
			if !send(ctx, s, ch, kv.EventBatch{Events: evs, Revision: pos}, end) {
				return
			}
		}
		if wake == nil {
			continue
		}
		select {
		case <-wake:
		case <-tick:
			if !send(ctx, s, ch, kv.EventBatch{Revision: pos}, end) {
				return
			}
			timer = arm()
		case <-ctx.Done():
			return
		case <-s.done:
			driver.SendLast(ctx, ch, end(s.endErr()))
			return
		}
	}
}
