package kv

import (
	"context"
	"time"
)

// Store is a key/value store with TTLs, compare-and-swap, watches and locks.
//
// Every method takes a context first and honours it: when ctx ends, a call
// returns ctx.Err() (possibly wrapped) and leaves no partial state behind.
// Implementations are safe for concurrent use by multiple goroutines.
//
// Keys are slash-separated paths checked by NormalizeKey; prefixes by
// NormalizePrefix. "a/b", "/a/b" and "a/b/" name the same key.
//
// Errors are the sentinels of this package, wrapped with %w: test them with
// errors.Is. After Close every method returns ErrClosed.
type Store interface {
	// Put writes value at key, creating or replacing it. A nil value is
	// rejected with ErrNilValue; use []byte{} for an empty one.
	Put(ctx context.Context, key string, value []byte, opts *WriteOptions) error

	// Get returns the pair at key, or ErrKeyNotFound.
	Get(ctx context.Context, key string, opts *ReadOptions) (*KVPair, error)

	// Delete removes key, or returns ErrKeyNotFound if it does not exist.
	// Keys below it are left alone; use DeleteTree for those.
	Delete(ctx context.Context, key string) error

	// Exists reports whether key exists.
	Exists(ctx context.Context, key string, opts *ReadOptions) (bool, error)

	// Watch follows one key. The first update is the key's current state
	// (Pair is nil when it does not exist); then one update per change, in
	// order, a delete being an update with a nil Pair. The channel is closed
	// by the store after ctx ends, after Close, or right after an update that
	// carries a non-nil Err; its goroutine has exited by then. A watch on a
	// missing key is valid and waits for the key to appear.
	Watch(ctx context.Context, key string, opts *ReadOptions) (<-chan KeyUpdate, error)

	// WatchTree follows every key strictly below prefix. Each update is the
	// full, sorted list of pairs below prefix at one revision: first the
	// current state, then one update per change (deletes included), with no
	// change lost between the first update and the next. Channel lifetime is
	// as for Watch. Stores that also implement Streamer offer an O(1)-per-
	// change alternative for large prefixes.
	WatchTree(ctx context.Context, prefix string, opts *ReadOptions) (<-chan TreeUpdate, error)

	// NewLock returns a Locker for key. It does not acquire anything; the
	// lock's bookkeeping keys are internal and never show up in List,
	// WatchTree, DeleteTree or Streamer results.
	NewLock(ctx context.Context, key string, opts *LockOptions) (Locker, error)

	// List returns every pair strictly below prefix (a key "a/b" is below
	// "a", "ab/c" is not), sorted by key. A missing prefix yields an empty
	// list, not an error. The empty prefix lists the whole store.
	List(ctx context.Context, prefix string, opts *ReadOptions) ([]*KVPair, error)

	// DeleteTree removes every key strictly below prefix, at any depth. The
	// key equal to prefix itself, if any, is kept. Deleting an empty tree is
	// not an error.
	DeleteTree(ctx context.Context, prefix string) error

	// AtomicPut writes value only if key is still at previous: with a nil
	// previous, only if key does not exist (else ErrKeyExists); otherwise
	// only if key's LastIndex equals previous.LastIndex (else ErrKeyModified,
	// or ErrKeyNotFound when the key is gone). On success it returns true and
	// the pair as written.
	AtomicPut(ctx context.Context, key string, value []byte, previous *KVPair, opts *WriteOptions) (bool, *KVPair, error)

	// AtomicDelete removes key only if its LastIndex equals
	// previous.LastIndex: ErrKeyModified if it changed, ErrKeyNotFound if it
	// is gone, ErrPreviousNotSpecified if previous is nil.
	AtomicDelete(ctx context.Context, key string, previous *KVPair) (bool, error)

	// Close releases the store: keys written with KeepAlive are removed (or
	// expire within their TTL if the server cannot be reached), locks are
	// released, watch channels receive ErrClosed and close. Close waits for
	// the goroutines the store started and is idempotent.
	Close() error
}

// KVPair is one key with its value and version.
type KVPair struct {
	// Key is the normalised key (see NormalizeKey), without leading slash.
	Key string
	// Value is never nil for a stored pair; it may be empty.
	Value []byte
	// LastIndex identifies this version of the key for AtomicPut and
	// AtomicDelete. It is opaque: compare it for equality only.
	LastIndex uint64
	// Revision is the store-wide revision of the last change to this key,
	// ordered across keys on stores that implement Streamer; zero elsewhere.
	Revision uint64
}

// WriteOptions tune a Put or AtomicPut. A nil *WriteOptions means the zero
// value: the key lives until deleted.
type WriteOptions struct {
	// TTL, when positive, makes the key expire. Drivers round it up to their
	// granularity and reject a TTL below their minimum with a *TTLError.
	TTL time.Duration
	// KeepAlive ties the key to this Store: it lives while the Store is open
	// and reachable, and is gone within TTL after the Store is closed or its
	// process dies. KeepAlive requires a positive TTL.
	KeepAlive bool
}

// ReadOptions tune a read. A nil *ReadOptions means the zero value.
type ReadOptions struct {
	// Consistent asks for a linearizable read where the backend offers a
	// cheaper, possibly stale one by default.
	Consistent bool
}

// LockOptions tune a Locker. A nil *LockOptions means the zero value.
type LockOptions struct {
	// Value is stored with the lock while it is held (for example the
	// holder's identity), for operators looking at the backend. No kv
	// method reads it back: lock bookkeeping is invisible to List and
	// friends, so code that must learn the holder publishes it in a key
	// of its own.
	Value []byte
	// TTL bounds how long the lock outlives a holder that died without
	// unlocking. Zero means the driver's default (documented per driver).
	TTL time.Duration
	// RenewDeadline is how long the holder may go without the server
	// confirming its hold before it declares the lock lost (closes the lost
	// channel). It must be below TTL so that the holder stops before the
	// server can hand the lock to someone else. Zero means the driver's
	// default, at most two thirds of TTL.
	RenewDeadline time.Duration
}

// KeyUpdate is one state of a watched key.
type KeyUpdate struct {
	// Key is the normalised key being watched.
	Key string
	// Pair is the key's value and version, or nil when the key does not
	// exist (it was deleted, expired or never created).
	Pair *KVPair
	// Err, when set, is terminal: the channel closes after this update.
	Err error
}

// TreeUpdate is one state of a watched prefix.
type TreeUpdate struct {
	// Prefix is the normalised prefix being watched.
	Prefix string
	// Pairs is every pair strictly below Prefix, sorted by key.
	Pairs []*KVPair
	// Revision is the store revision this state was read at, where the
	// backend has one; zero elsewhere.
	Revision uint64
	// Err, when set, is terminal: the channel closes after this update.
	Err error
}
