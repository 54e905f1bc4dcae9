package kv

import "context"

// Streamer is an optional power of a Store, found by type assertion: a
// revisioned, resumable stream of changes under a prefix. It is what an
// informer follows so that one change costs O(1), not a re-list:
//
//	snap, _ := s.Snapshot(ctx, prefix)       // state at snap.Revision
//	ch, _ := s.Events(ctx, prefix, snap.Revision) // every change after it
//
// Revisions are store-wide and strictly increase with each change; all
// changes of one atomic write share a revision.
type Streamer interface {
	// Snapshot lists every pair strictly below prefix, consistent at one
	// revision, which it returns.
	Snapshot(ctx context.Context, prefix string) (Snapshot, error)

	// Events streams every change strictly below prefix with a revision
	// greater than after, in revision order, none lost or repeated. Stores
	// that keep no history of changes (Consul, ZooKeeper; see their docs)
	// may merge successive changes to one key made faster than the server
	// reports them into the last of them: the final state of every key is
	// always delivered, intermediate states may not be. A
	// driver resumes its server watch after a disconnect on its own. When
	// it cannot give every change since after (history compacted, a session
	// expired with changes unseen, an index reset), it sends a batch whose
	// Err matches ErrCompacted and closes the channel: the caller re-lists
	// with Snapshot and starts again.
	//
	// The channel is closed by the driver when ctx ends, on Close (after a
	// batch with ErrClosed), or after any batch with Err set. Sends block
	// while the reader is slow (the server watch then waits; nothing is
	// dropped or buffered without bound) and always give way to ctx.
	Events(ctx context.Context, prefix string, after uint64) (<-chan EventBatch, error)

	// Revision returns the store's current revision: at least the revision
	// of every write that completed before the call. Waiting until a stream
	// has passed it gives read-your-writes.
	Revision(ctx context.Context) (uint64, error)
}

// Snapshot is the state of a prefix at one revision.
type Snapshot struct {
	Pairs    []*KVPair // sorted by key
	Revision uint64
}

// EventType says what happened to a key.
type EventType uint8

const (
	// EventPut: the key was created or updated.
	EventPut EventType = iota + 1
	// EventDelete: the key was deleted or expired.
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	}
	return "UNKNOWN"
}

// Event is one change to one key.
type Event struct {
	Type EventType
	// Pair is the key as written by a put. For a delete, Pair.Key is set,
	// Pair.Value is nil and Pair.LastIndex is zero. Pair.Revision is the
	// revision of the change in both cases.
	Pair *KVPair
}

// EventBatch is a group of changes, in revision order.
type EventBatch struct {
	Events []Event
	// Revision is the revision the subscriber has caught up to: every change
	// below the prefix with a revision up to it has been delivered. A batch
	// with no events is a progress notice; drivers send one at least every
	// second while idle so that Revision-based waits end.
	Revision uint64
	// Err, when set, is terminal; ErrCompacted means re-list.
	Err error
}
