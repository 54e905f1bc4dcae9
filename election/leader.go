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

// Observe follows the leader of the election at key: first the current
// leader (a zero Leader when there is none), then every change, "no leader"
// included, without repeating a value. It rides on a store watch (no
// polling) and re-establishes it with backoff after transient errors.
//
// The channel is closed by Observe when ctx ends or the store is closed;
// sends block until read or ctx ends.
func Observe(ctx context.Context, store kv.Store, key string) (<-chan Leader, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, err
	}
	// Establish the first watch before returning, so that bad input and a
	// closed store are reported here rather than as a silent close.
	updates, err := store.Watch(ctx, recordKey(k), nil)
	if err != nil {
		return nil, err
	}
	out := make(chan Leader, 1)
	go observe(ctx, store, recordKey(k), updates, out)
	return out, nil
}

func observe(ctx context.Context, store kv.Store, key string, updates <-chan kv.KeyUpdate, out chan<- Leader) {
	defer close(out)
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(50*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second), backoff.WithMaxElapsedTime(0))
	last, sent := Leader{}, false
	for {
		for u := range orClosed(updates) {
			if u.Err != nil {
				if errors.Is(u.Err, kv.ErrClosed) {
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
			case out <- l:
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
			if errors.Is(err, kv.ErrClosed) || ctx.Err() != nil {
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
