package kv

import "context"

// LockHolder is one contender for a lock as the backend records it.
type LockHolder struct {
	// Value is the contender's LockOptions.Value (its identity, by
	// convention).
	Value []byte
	// Holding is true for the holder, false for a waiter.
	Holding bool
	// Token is the holder's fencing token (Locker.Token), where the
	// backend can tell it from outside; zero otherwise and for waiters.
	Token uint64
	// ID is the backend's own name of the contender (etcd lease, Consul
	// session, ZooKeeper znode, memory client), for the operator who looks
	// further with the backend's tools.
	ID string
}

// LockInspector is implemented by the stores that can list a lock's
// contenders from outside (every driver here does): the holder first, then
// the waiters in the order the backend would hand them the lock, where it
// queues them. It is for operators' tools: the list is a snapshot and may
// be stale by the time it is read.
type LockInspector interface {
	LockHolders(ctx context.Context, key string) ([]LockHolder, error)
}
