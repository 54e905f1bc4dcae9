package memory

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

// Store is one client of a Backend. It implements kv.Store, kv.Streamer and
// (through NewLock) kv.Locker, and is safe for concurrent use.
type Store struct {
	b     *Backend
	owned bool // Close also closes b

	// Guarded by b.mu.
	closed bool
	killed bool

	done       chan struct{} // closed on Close or Kill; ends this client's streams
	doneOnce   sync.Once
	close      sync.Once
	goroutines driver.Group // watch and Events goroutines; Close stops it under b.mu
}

var (
	_ kv.Store    = (*Store)(nil)
	_ kv.Streamer = (*Store)(nil)
)

// New returns a Store on a Backend of its own, closed with the Store.
func New(opts ...Option) *Store {
	return newStore(NewBackend(opts...), true)
}

func newStore(b *Backend, owned bool) *Store {
	return &Store{b: b, owned: owned, done: make(chan struct{})}
}

// Backend returns the Backend s is a client of, for Compact and for more
// clients.
func (s *Store) Backend() *Backend { return s.b }

// lock takes the backend mutex and checks that s may be used: the usual
// preamble of every call. On error the mutex is released.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	s.b.mu.Lock()
	if err := s.stateErrLocked(); err != nil {
		s.b.mu.Unlock()
		return err
	}
	return nil
}

func (s *Store) stateErrLocked() error {
	switch {
	case s.closed:
		return fmt.Errorf("memory: %w", kv.ErrClosed)
	case s.killed:
		return fmt.Errorf("memory: client killed: %w", kv.ErrNotReachable)
	}
	return nil
}

func checkWrite(value []byte, opts *kv.WriteOptions) error {
	if err := kv.CheckValue(value); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if err := kv.CheckWriteOptions(opts, MinTTL); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	return nil
}

// MinTTL is the smallest TTL a Store accepts. Expiry is timer-driven, so a
// key is gone within about a millisecond of its TTL.
const MinTTL = time.Millisecond

// Put implements kv.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return fmt.Errorf("memory: put: %w", err)
	}
	if err := checkWrite(value, opts); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.b.mu.Unlock()
	s.b.putLocked(k, value, opts, s)
	return nil
}

// Get implements kv.Store.
func (s *Store) Get(ctx context.Context, key string, _ *kv.ReadOptions) (*kv.KVPair, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return nil, fmt.Errorf("memory: get: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.b.mu.Unlock()
	e := s.b.data[k]
	if e == nil {
		return nil, fmt.Errorf("memory: get %q: %w", k, kv.ErrKeyNotFound)
	}
	return clonePair(e.pair), nil
}

// Delete implements kv.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return fmt.Errorf("memory: delete: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.b.mu.Unlock()
	if s.b.data[k] == nil {
		return fmt.Errorf("memory: delete %q: %w", k, kv.ErrKeyNotFound)
	}
	s.b.deleteLocked(k)
	return nil
}

// Exists implements kv.Store.
func (s *Store) Exists(ctx context.Context, key string, _ *kv.ReadOptions) (bool, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return false, fmt.Errorf("memory: exists: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.b.mu.Unlock()
	return s.b.data[k] != nil, nil
}

// List implements kv.Store.
func (s *Store) List(ctx context.Context, prefix string, _ *kv.ReadOptions) ([]*kv.KVPair, error) {
	p, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("memory: list: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.b.mu.Unlock()
	return s.b.listLocked(p), nil
}

// DeleteTree implements kv.Store. All keys go at one revision.
func (s *Store) DeleteTree(ctx context.Context, prefix string) error {
	p, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return fmt.Errorf("memory: delete tree: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.b.mu.Unlock()
	var keys []string // in key order: the order of the delete events
	s.b.belowLocked(p, func(k string, _ *entry) bool {
		keys = append(keys, k)
		return true
	})
	s.b.deleteLocked(keys...)
	return nil
}

// AtomicPut implements kv.Store.
func (s *Store) AtomicPut(ctx context.Context, key string, value []byte, previous *kv.KVPair, opts *kv.WriteOptions) (bool, *kv.KVPair, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return false, nil, fmt.Errorf("memory: atomic put: %w", err)
	}
	if err := checkWrite(value, opts); err != nil {
		return false, nil, err
	}
	if err := s.lock(ctx); err != nil {
		return false, nil, err
	}
	defer s.b.mu.Unlock()
	cur := s.b.data[k]
	switch {
	case previous == nil && cur != nil:
		return false, nil, fmt.Errorf("memory: atomic put %q: %w", k, kv.ErrKeyExists)
	case previous != nil && cur == nil:
		return false, nil, fmt.Errorf("memory: atomic put %q: %w", k, kv.ErrKeyNotFound)
	case previous != nil && cur.pair.LastIndex != previous.LastIndex:
		return false, nil, fmt.Errorf("memory: atomic put %q: index %d, want %d: %w", k, cur.pair.LastIndex, previous.LastIndex, kv.ErrKeyModified)
	}
	return true, clonePair(s.b.putLocked(k, value, opts, s)), nil
}

// AtomicDelete implements kv.Store.
func (s *Store) AtomicDelete(ctx context.Context, key string, previous *kv.KVPair) (bool, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return false, fmt.Errorf("memory: atomic delete: %w", err)
	}
	if previous == nil {
		return false, fmt.Errorf("memory: atomic delete %q: %w", k, kv.ErrPreviousNotSpecified)
	}
	if err := s.lock(ctx); err != nil {
		return false, err
	}
	defer s.b.mu.Unlock()
	cur := s.b.data[k]
	switch {
	case cur == nil:
		return false, fmt.Errorf("memory: atomic delete %q: %w", k, kv.ErrKeyNotFound)
	case cur.pair.LastIndex != previous.LastIndex:
		return false, fmt.Errorf("memory: atomic delete %q: index %d, want %d: %w", k, cur.pair.LastIndex, previous.LastIndex, kv.ErrKeyModified)
	}
	s.b.deleteLocked(k)
	return true, nil
}

// Close implements kv.Store: KeepAlive keys of s are deleted (at one
// revision), its locks released, its streams end with kv.ErrClosed. It
// waits for those streams' goroutines: one whose reader neither reads nor
// cancels gives up its last update after driver.CloseGrace (they wait in
// parallel, so Close waits that long once at most). Close always returns
// nil.
func (s *Store) Close() error {
	s.close.Do(func() {
		s.b.mu.Lock()
		s.closed = true
		s.goroutines.Stop()
		if !s.killed {
			var keys []string
			for k, e := range s.b.data {
				if e.owner == s {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			s.b.deleteLocked(keys...)
			for _, l := range s.b.locks {
				if l.holder.s == s {
					s.b.releaseLocked(l)
				}
			}
		}
		s.b.broadcastLocked()
		s.b.mu.Unlock()
		s.doneOnce.Do(func() { close(s.done) })
		s.goroutines.Wait()
		if s.owned {
			s.b.Close()
		}
	})
	return nil
}

// Kill simulates the death of the client's process, for tests (it is what
// kvtest.Harness.Kill does): its calls fail with kv.ErrNotReachable, its
// streams end with that error, and nothing is released: its KeepAlive keys
// expire TTL after now and its locks their lock TTL after now, as on a
// server that stops hearing from a client. Close must still be called.
func (s *Store) Kill() {
	s.b.mu.Lock()
	if s.closed || s.killed {
		s.b.mu.Unlock()
		return
	}
	s.killed = true
	for k, e := range s.b.data {
		if e.owner == s {
			e.owner = nil
			s.b.armLocked(k, e)
		}
	}
	for _, l := range s.b.locks {
		if l.holder.s == s {
			s.b.armLockLocked(l)
		}
	}
	s.b.broadcastLocked()
	s.b.mu.Unlock()
	s.doneOnce.Do(func() { close(s.done) })
}

// endErr is the Err of the last update of a stream ended by Close or Kill.
func (s *Store) endErr() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if err := s.stateErrLocked(); err != nil {
		return err
	}
	return fmt.Errorf("memory: %w", kv.ErrClosed)
}

// CheckWriteOptions implements kv.OptionsChecker.
func (s *Store) CheckWriteOptions(opts *kv.WriteOptions) error {
	if err := kv.CheckWriteOptions(opts, MinTTL); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	return nil
}

var _ kv.OptionsChecker = (*Store)(nil)
