package consul

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
)

// blocker runs the successive blocking queries of one watch and applies the
// rules Consul asks of a blocking-query loop:
//
//   - The index is the X-Consul-Index of the previous answer. When it goes
//     backwards (snapshot restore, tombstones of the highest key reaped) it
//     is reset to 0, so the next query answers at once with the current
//     state, and then taken from that answer.
//   - An index of 0 is never used to block (it would answer at once, for
//     ever): an answer of 0 becomes 1.
//   - An answer with an unchanged index is not a change. Back-to-back
//     unchanged answers mean something is off (or the wait time is tiny),
//     so the loop backs off before the next query, up to 1s.
//   - An answer can advance the index without changing what the watch
//     follows: a missing key or an empty prefix answers with the store-wide
//     index, so every write anywhere wakes it. The caller reports such an
//     answer (spurious), and the loop backs off from 5ms up to 50ms until
//     an answer brings a change (useful). That is the loop's rate limit: at
//     most ~20 queries a second for a watch that sees nothing, at the cost
//     of up to 50ms more latency for its first change; watches on existing
//     keys answer with the key's own index and are never delayed.
//   - Transient errors are retried with exponential backoff for at most
//     Config.RetryTimeout; then, and for any other error, the loop ends.
//   - Every query carries the watch's ctx, so cancelling returns at once
//     instead of after the wait time.
type blocker struct {
	s          *Store
	index      uint64
	wait       time.Duration
	consistent bool

	errBackoff      *backoff.ExponentialBackOff
	idleBackoff     *backoff.ExponentialBackOff
	spuriousBackoff *backoff.ExponentialBackOff
	failingSince    time.Time
	pause           time.Duration
}

func (s *Store) newBlocker(index uint64, wait time.Duration, consistent bool) *blocker {
	return &blocker{
		s:          s,
		index:      max(index, 1),
		wait:       wait,
		consistent: consistent,
		errBackoff: backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(100*time.Millisecond),
			backoff.WithMaxInterval(5*time.Second),
			backoff.WithMaxElapsedTime(0)),
		idleBackoff: backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(10*time.Millisecond),
			backoff.WithMaxInterval(time.Second),
			backoff.WithMaxElapsedTime(0)),
		spuriousBackoff: backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(5*time.Millisecond),
			backoff.WithMaxInterval(50*time.Millisecond),
			backoff.WithMaxElapsedTime(0)),
	}
}

// spurious records that the last answer changed nothing the watch follows.
func (b *blocker) spurious() {
	b.pause = max(b.pause, b.spuriousBackoff.NextBackOff())
}

// useful records that the last answer brought a change.
func (b *blocker) useful() { b.spuriousBackoff.Reset() }

// outcome of one blocking query.
type outcome int

const (
	retry    outcome = iota // nothing to look at; query again
	answered                // the query answered; compare its result
	reset                   // it answered, and the index went backwards
)

// next waits out any pending pause, runs one query through run (which must
// pass the options it is given and return the answer's index) and says
// what happened. A non-nil error is terminal: ctx ended, or a permanent or
// persistent failure (translated).
func (b *blocker) next(ctx context.Context, op, what string, run func(q *api.QueryOptions) (uint64, error)) (outcome, error) {
	if b.pause > 0 {
		t := time.NewTimer(b.pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return retry, ctx.Err()
		case <-t.C:
		}
		b.pause = 0
	}
	q := &api.QueryOptions{WaitIndex: b.index, WaitTime: b.wait, RequireConsistent: b.consistent}
	got, err := run(q.WithContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return retry, ctx.Err()
		}
		terr := b.s.translate(ctx, op, what, err)
		if !transient(terr) {
			return retry, terr
		}
		if b.failingSince.IsZero() {
			b.failingSince = time.Now()
		}
		if time.Since(b.failingSince) > b.s.cfg.RetryTimeout {
			return retry, terr
		}
		b.pause = b.errBackoff.NextBackOff()
		b.s.log.Warn("consul: blocking query failed; retrying", zap.String("op", op), zap.String("key", what),
			zap.Duration("in", b.pause), zap.Error(err))
		return retry, nil
	}
	b.failingSince = time.Time{}
	b.errBackoff.Reset()
	switch {
	case got < b.index:
		b.index = 0
		return reset, nil
	case got == b.index:
		b.pause = b.idleBackoff.NextBackOff()
	default:
		b.idleBackoff.Reset()
	}
	b.index = max(got, 1)
	return answered, nil
}
