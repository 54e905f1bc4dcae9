package kv

import (
	"context"
	"fmt"
)

// Locker is a distributed mutex on one key, from Store.NewLock. One Locker
// holds the lock at most once at a time; it can lock again after Unlock or
// after losing the lock. A Locker is safe for concurrent use, but Lock and
// Unlock are meant to be called by one owner.
//
// Holding a lock is a belief, not a fact: the server may expire it (the
// holder paused, or lost its connection) before the holder notices. The lost
// channel and the fencing token exist for that: stop work when the channel
// closes, and make writes that must not come from a deposed holder through
// GuardedPut and GuardedDelete, which the server rejects once the lock has
// passed on.
type Locker interface {
	// Lock blocks until the lock is held or ctx ends. On success it returns
	// a channel that the Locker closes when the lock is released or lost
	// (expired on the server, taken over, store closed). On ctx end it
	// removes any waiting state it created and returns ctx.Err(); it never
	// returns a nil channel with a nil error. Calling Lock while this Locker
	// holds the lock returns ErrLockHeld.
	Lock(ctx context.Context) (<-chan struct{}, error)

	// TryLock is Lock without waiting: ErrLockHeld when another owner holds
	// the lock.
	TryLock(ctx context.Context) (<-chan struct{}, error)

	// Unlock releases the lock. The hold ends when Unlock is called,
	// whatever happens next: by the time it returns Token is 0, guarded
	// writes fail with ErrNotLocked and the lost channel is closed. The
	// release on the server (which hands the lock to the next contender at
	// once) is not abandoned when ctx ends: it goes on in the background,
	// bounded by the driver, so that a deferred Unlock with a cancelled ctx
	// still frees the lock now rather than a TTL later. Unlock returns nil
	// once the server has released the lock, ctx.Err() (wrapped) if ctx
	// ended first, ErrNotReachable if the server could not be reached; in
	// the last two cases the lock is free on the server within its TTL at
	// worst. Unlocking a lock that is not held (never locked, already
	// unlocked, or lost) returns nil: Unlock is idempotent.
	Unlock(ctx context.Context) error

	// Token returns the fencing token of the current hold, or 0 when the
	// lock is not held. Tokens of successive holders of the same key
	// strictly increase, whichever Locker or process holds it.
	Token() uint64

	// GuardedPut writes value at key only if this Locker still holds the
	// lock, checked atomically by the server. It returns ErrNotLocked when
	// the lock is not held here, ErrLockLost when the server says it has
	// passed on.
	GuardedPut(ctx context.Context, key string, value []byte, opts *WriteOptions) error

	// GuardedDelete deletes key only if this Locker still holds the lock;
	// errors as GuardedPut, plus ErrKeyNotFound.
	GuardedDelete(ctx context.Context, key string) error
}

// CheckLockOptions checks what LockOptions must hold on every backend: no
// negative TTL or RenewDeadline, and a RenewDeadline below the TTL (or a
// cut-off holder could act after the lock passed on). With a zero TTL the
// second check waits for the driver, which knows its default TTL: every
// driver's NewLock makes both. The error is a *TTLError (it matches
// ErrInvalidTTL). lock.New and election.New call it too, so that a bad
// option fails before the store is touched.
func CheckLockOptions(o LockOptions) error {
	switch {
	case o.TTL < 0 || o.RenewDeadline < 0:
		return &TTLError{TTL: o.TTL, Reason: fmt.Sprintf("TTL and RenewDeadline (%v) must not be negative", o.RenewDeadline)}
	case o.TTL > 0 && o.RenewDeadline >= o.TTL:
		return &TTLError{TTL: o.TTL,
			Reason: fmt.Sprintf("RenewDeadline %v must be below the TTL, or a cut-off holder could act after the lock passed on", o.RenewDeadline)}
	}
	return nil
}
