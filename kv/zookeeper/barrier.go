package zookeeper

import (
	"errors"
	"fmt"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/regentkv/regent/kv"
)

// A read barrier makes the connected server catch up with every write
// acknowledged before the barrier began, on any member, so that the reads
// sent after it on this connection are linearizable.
//
// ZooKeeper's own sync does not do that in 3.8: it is not a quorum
// operation (ZOOKEEPER-1675, open), so a leader that has been deposed
// without knowing it yet answers it; and on the leader itself it is
// answered at once, although the leader sends a commit to its followers
// before it applies that commit itself, so a follower can acknowledge a
// write that a sync-and-read on the leader does not see yet (measured: 33
// of 3,000 such reads were stale, TestConsistentReadAfterAcknowledged
// WriteOnAnotherMember). The barrier is a write instead: a multi holding
// one version check of the root znode (version -1, which any version
// passes), which changes nothing but goes through Zab like any write. It
// is answered once the connected server has applied it, and it comes after
// every write committed before it was proposed; this session's reads that
// follow are served after it. A reconnect to another member in between
// changes nothing: a server refuses a client that has seen a newer zxid
// than its own. A new session does (go-zookeeper forgets the zxid it has
// seen), so a Consistent read checks that its session did not change
// between the barrier and the answer (sameSession).
//
// Barriers are shared: a caller joins the round that has not been sent
// yet, and one multi serves everybody who joined before it left, so N
// concurrent Consistent reads (or lock confirmations) cost one quorum
// write, not N.
type barrier struct {
	mu      sync.Mutex
	pending *barrierRound // joined, not sent yet; nil if none
	sending bool          // a sender goroutine is running
}

type barrierRound struct {
	done chan struct{}
	err  error
}

// readBarrier waits for a barrier sent after this call began (see barrier).
// It returns go-zookeeper's error for the barrier when it failed, and
// kv.ErrClosed when the Store is closing.
func (s *Store) readBarrier() error {
	b := &s.barrier
	b.mu.Lock()
	r := b.pending
	if r == nil {
		r = &barrierRound{done: make(chan struct{})}
		b.pending = r
	}
	start := !b.sending
	b.sending = true
	b.mu.Unlock()
	if start && !s.goroutines.Go(s.sendBarriers) {
		// Closing: no sender will run. Fail the pending round for everyone
		// who joined it, or they would wait forever (and Close with them).
		b.mu.Lock()
		b.sending = false
		if pending := b.pending; pending != nil {
			b.pending = nil
			pending.err = fmt.Errorf("zookeeper: %w", kv.ErrClosed)
			close(pending.done)
		}
		b.mu.Unlock()
		return fmt.Errorf("zookeeper: %w", kv.ErrClosed)
	}
	<-r.done
	return r.err
}

// sendBarriers sends one barrier per round that callers have joined, until
// no round is left waiting.
func (s *Store) sendBarriers() {
	b := &s.barrier
	for {
		b.mu.Lock()
		r := b.pending
		b.pending = nil
		if r == nil {
			b.sending = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		_, err := s.conn.Multi(&zk.CheckVersionRequest{Path: s.root, Version: -1})
		if errors.Is(err, zk.ErrNoNode) {
			// A multi whose check failed (the root is gone) went through
			// Zab all the same: it orders the reads just as well.
			err = nil
		}
		r.err = err
		close(r.done)
	}
}

// sameSession fails a Consistent read whose session changed since sid,
// before its barrier: the new session's server may not have applied the
// barrier yet. The caller's next try is on the new session.
func (s *Store) sameSession(sid int64) error {
	if s.conn.SessionID() != sid {
		return fmt.Errorf("zookeeper: the session changed during a Consistent read: %w", kv.ErrNotReachable)
	}
	return nil
}
