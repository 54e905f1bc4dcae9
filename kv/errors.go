package kv

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Drivers wrap them with %w; match them with errors.Is.
var (
	// ErrKeyNotFound: the key does not exist.
	ErrKeyNotFound = errors.New("kv: key not found")
	// ErrKeyModified: a compare-and-swap found a different version.
	ErrKeyModified = errors.New("kv: key was modified")
	// ErrKeyExists: a create-only AtomicPut found the key already there.
	ErrKeyExists = errors.New("kv: key exists")
	// ErrPreviousNotSpecified: AtomicDelete needs the previous pair.
	ErrPreviousNotSpecified = errors.New("kv: previous pair not specified")
	// ErrInvalidKey: the key or prefix is malformed (see NormalizeKey).
	ErrInvalidKey = errors.New("kv: invalid key")
	// ErrNilValue: a nil value was written; use []byte{} for an empty one.
	ErrNilValue = errors.New("kv: nil value")
	// ErrValueTooLarge: the value exceeds MaxValueSize.
	ErrValueTooLarge = errors.New("kv: value too large")
	// ErrInvalidTTL: the TTL is negative, below the backend's minimum, or
	// KeepAlive was asked without a TTL. The *TTLError says which.
	ErrInvalidTTL = errors.New("kv: invalid TTL")
	// ErrClosed: the store (or the watch, or the lock) has been closed.
	ErrClosed = errors.New("kv: store closed")
	// ErrCompacted: the requested revision is older than the oldest one the
	// store still keeps. The *CompactedError carries both revisions; the
	// caller must re-list.
	ErrCompacted = errors.New("kv: revision compacted")
	// ErrNotReachable: the backend could not be reached in time.
	ErrNotReachable = errors.New("kv: backend not reachable")
	// ErrOutcomeUnknown: a write was sent, or may have been, but no answer
	// came back (the connection broke mid-call, the caller's ctx ended
	// while it was in flight, the server failed while committing it): the
	// server may or may not have applied it, now or later. It always comes
	// with ErrNotReachable or the ctx error. Retry only a write that is
	// safe to apply twice, or read first: a retried create-only AtomicPut
	// that applied the first time says ErrKeyExists.
	ErrOutcomeUnknown = errors.New("kv: write outcome unknown")
	// ErrCallNotSupported: the backend cannot do this at all.
	ErrCallNotSupported = errors.New("kv: call not supported by this backend")
	// ErrLockHeld: TryLock found the lock held by someone else.
	ErrLockHeld = errors.New("kv: lock held by another owner")
	// ErrNotLocked: the operation needs the lock, and this Locker does not
	// hold it (never acquired, unlocked, or lost).
	ErrNotLocked = errors.New("kv: lock not held")
	// ErrLockLost: the lock was held but is no longer; a guarded write
	// through it was rejected by the server.
	ErrLockLost = errors.New("kv: lock lost")
	// ErrPermissionDenied: the server refused the call for the client's
	// credentials (an etcd role, a Consul ACL token, a ZooKeeper ACL):
	// nothing was read or written. Retrying does not help.
	ErrPermissionDenied = errors.New("kv: permission denied")
	// ErrAuthFailed: the server did not accept the credentials themselves
	// (wrong password, unknown user or token), where the backend tells
	// that apart from a refusal.
	ErrAuthFailed = errors.New("kv: authentication failed")
)

// TTLError explains why a TTL was refused. It matches ErrInvalidTTL.
type TTLError struct {
	TTL    time.Duration // what was asked
	Min    time.Duration // the backend's minimum, if that was the reason
	Reason string
}

func (e *TTLError) Error() string {
	if e.Min > 0 && e.TTL < e.Min {
		if e.Reason != "" {
			return fmt.Sprintf("kv: invalid TTL %v: below the backend minimum %v (%s)", e.TTL, e.Min, e.Reason)
		}
		return fmt.Sprintf("kv: invalid TTL %v: below the backend minimum %v", e.TTL, e.Min)
	}
	return fmt.Sprintf("kv: invalid TTL %v: %s", e.TTL, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidTTL) true.
func (e *TTLError) Is(target error) bool { return target == ErrInvalidTTL }

// CompactedError reports a revision that is no longer available. It matches
// ErrCompacted.
type CompactedError struct {
	Requested uint64 // the revision asked for
	Compacted uint64 // the oldest revision still available, minus one
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("kv: revision %d compacted (store keeps revisions after %d): re-list", e.Requested, e.Compacted)
}

// Is makes errors.Is(err, ErrCompacted) true.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// MaxValueSize is the largest value every driver accepts: Consul's limit,
// the smallest of the three backends. Keeping one limit means code tested on
// one backend does not fail on another.
const MaxValueSize = 512 * 1024

// CheckValue returns ErrNilValue or ErrValueTooLarge for a value no driver
// may store, or nil.
func CheckValue(value []byte) error {
	if value == nil {
		return ErrNilValue
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(value), MaxValueSize)
	}
	return nil
}

// CheckWriteOptions validates the TTL fields of opts against a backend's
// minimum TTL (zero: no minimum) and returns a *TTLError or nil.
func CheckWriteOptions(opts *WriteOptions, minTTL time.Duration) error {
	if opts == nil {
		return nil
	}
	switch {
	case opts.TTL < 0:
		return &TTLError{TTL: opts.TTL, Reason: "negative"}
	case opts.KeepAlive && opts.TTL == 0:
		return &TTLError{TTL: opts.TTL, Reason: "KeepAlive needs a positive TTL"}
	case opts.TTL > 0 && opts.TTL < minTTL:
		return &TTLError{TTL: opts.TTL, Min: minTTL}
	}
	return nil
}

// UnknownOutcome marks err, the error of a write that was sent (or may have
// been) without an answer, as matching ErrOutcomeUnknown as well as what
// it matched before (ErrNotReachable, a ctx error, ErrClosed). Drivers
// call it; nil stays nil.
func UnknownOutcome(err error) error {
	if err == nil || errors.Is(err, ErrOutcomeUnknown) {
		return err
	}
	return &outcomeError{err: err}
}

type outcomeError struct{ err error }

func (e *outcomeError) Error() string {
	return e.err.Error() + " (" + ErrOutcomeUnknown.Error() + ": it may have been applied)"
}

func (e *outcomeError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrOutcomeUnknown) true.
func (e *outcomeError) Is(target error) bool { return target == ErrOutcomeUnknown }
