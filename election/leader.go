package election

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/regentkv/regent/kv"
)

// ErrNoLeader is returned by Leader when nobody leads the election.
var ErrNoLeader = errors.New("election: no leader")

// Leader describes a leadership term as recorded in the store.
type Leader struct {
	// Identity of the leader; empty in an Observe update means "no leader".
	Identity string `json:"identity"`
	// Token is the fencing token of the term: it strictly increases from
	// one term to the next.
	Token uint64 `json:"token"`
	// Since is when the term began, by the leader's clock.
	Since time.Time `json:"since"`
}

func recordKey(key string) string { return key + "/leader" }

func decodeLeader(p *kv.KVPair) (Leader, error) {
	var l Leader
	if err := json.Unmarshal(p.Value, &l); err != nil {
		return Leader{}, fmt.Errorf("election: leader record %s: %w", p.Key, err)
	}
	return l, nil
}

// LeaderOf returns the current leader of the election at key, or
// ErrNoLeader.
func LeaderOf(ctx context.Context, store kv.Store, key string) (Leader, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return Leader{}, err
	}
	p, err := store.Get(ctx, recordKey(k), &kv.ReadOptions{Consistent: true})
	if errors.Is(err, kv.ErrKeyNotFound) {
		return Leader{}, ErrNoLeader
	}
	if err != nil {
		return Leader{}, err
	}
	return decodeLeader(p)
}

// Observation is one state of an election as Observe sees it: its
// Leader (the zero Leader when there is none), or, as the last value
// before the channel closes, Err saying why it ended (kv.ErrClosed: the
// store was closed), as a kv watch ends. A channel that the caller's ctx
// ended closes without an Err.
type Observation struct {
	Leader
	Err error
}

// Observe follows the leader of the election at key: first the current
// leader (a zero Leader when there is none), then every change, "no leader"
// included, without repeating a value. It rides on a store watch (no
// polling) and re-establishes it with backoff after transient errors.
//
// The channel closes when ctx ends, or after an Observation with Err when
// the store is closed; sends block until read or ctx ends.
func Observe(ctx context.Context, store kv.Store, key string) (<-chan Observation, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, err
	}
	// Establish the first watch before returning, so that bad input and a
	// closed store are reported here rather than on the channel.
	updates, err := store.Watch(ctx, recordKey(k), nil)
	if err != nil {
		return nil, err
	}
	out := make(chan Observation, 1)
	go observe(ctx, store, recordKey(k), updates, out)
	return out, nil
}

func observe(ctx context.Context, store kv.Store, key string, updates <-chan kv.KeyUpdate, out chan<- Observation) {
	defer close(out)
	ended := func(err error) {
		select {
		case out <- Observation{Err: fmt.Errorf("election: observe %s: %w", key, err)}:
		case <-ctx.Done():
		}
	}
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(50*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second), backoff.WithMaxElapsedTime(0))
	last, sent := Leader{}, false
	for {
		for u := range orClosed(updates) {
			if u.Err != nil {
				if errors.Is(u.Err, kv.ErrClosed) {
					ended(u.Err)
					return
				}
				break
			}
			bo.Reset()
			var l Leader
			if u.Pair != nil {
				var err error
				if l, err = decodeLeader(u.Pair); err != nil {
					continue // not a record we wrote; the next write replaces it
				}
			}
			if sent && l == last {
				continue
			}
			select {
			case out <- Observation{Leader: l}:
				last, sent = l, true
			case <-ctx.Done():
				return
			}
		}
		// The watch ended without ctx ending: re-watch after a pause.
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		var err error
		if updates, err = store.Watch(ctx, key, nil); err != nil {
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, kv.ErrClosed):
				ended(err)
				return
			}
			updates = nil
		}
	}
}

var closedUpdates = func() chan kv.KeyUpdate {
	c := make(chan kv.KeyUpdate)
	close(c)
	return c
}()

// orClosed turns a nil channel (a failed re-watch) into a closed one, so that
// the loop goes straight back to its backoff instead of blocking forever.
func orClosed(c <-chan kv.KeyUpdate) <-chan kv.KeyUpdate {
	if c == nil {
		return closedUpdates
	}
	return c
}
