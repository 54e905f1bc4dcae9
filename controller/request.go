package controller

import (
	"context"
	"time"
)

// Request names one key to reconcile. Requests are level-based: they carry
// the key and the key's state in the controller's cache when a worker picked
// the request up, never the event that caused it. Many events for one key
// collapse into one request, and a reconcile always sees the latest state.
type Request[T any] struct {
	// Key is the normalised store key (as in kv.KVPair.Key) below the
	// controller's informer prefix.
	Key string
	// Object is the key's cached state when the request was dequeued; the
	// zero T when Exists is false. It is shared with the cache: read-only.
	Object T
	// Exists is false when the key is not in the cache: it was deleted (or
	// its value stopped decoding), so the reconciler should clean up.
	Exists bool
}

// Result tells the controller what to do with a key after a successful
// reconcile.
type Result struct {
	// RequeueAfter, when positive, reconciles the key again after this
	// long (and resets its error backoff): polling for something the store
	// does not announce, such as time or an external system.
	RequeueAfter time.Duration
}

// Reconciler drives the world toward the state stored under one key.
//
// Reconcile must be idempotent: it may run any number of times for the same
// state (resyncs, retries, a new leader's first pass over the cache). It is
// never called concurrently for the same key. An error requeues the key with
// rate-limited backoff, unless it is marked with Terminal. A panic is
// recovered, counted and handled as an error. ctx ends when the controller
// stops or leadership is lost; under a Manager with leader election it
// carries the leader's election.Term (election.TermFrom) for fenced writes,
// and LoggerFrom(ctx) is the controller's logger with the key attached.
type Reconciler[T any] interface {
	Reconcile(ctx context.Context, req Request[T]) (Result, error)
}

// ReconcileFunc adapts a function to a Reconciler.
type ReconcileFunc[T any] func(ctx context.Context, req Request[T]) (Result, error)

// Reconcile calls f.
func (f ReconcileFunc[T]) Reconcile(ctx context.Context, req Request[T]) (Result, error) {
	return f(ctx, req)
}
