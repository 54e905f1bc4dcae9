package kv

import (
	"context"
	"time"
)

// KeyTTL is how one key expires.
type KeyTTL struct {
	// TTL is what the key was written with, as the backend recorded it
	// (rounded to its granularity).
	TTL time.Duration
	// Remaining is how much of it is left, where the backend can tell
	// (etcd's leases); zero otherwise.
	Remaining time.Duration
	// KeepAlive: the key lives while its writer's Store does, renewed by
	// it, where the backend can tell (not on etcd, where both kinds are
	// leased keys).
	KeepAlive bool
}

// TTLReporter is implemented by the stores that can tell which keys
// expire (every driver here does), for tools that copy keys with their
// expiry (regent copy). Keys that live until deleted are absent from the
// map; a key that expires between the listing and the answer may be in
// it or not.
type TTLReporter interface {
	TTLs(ctx context.Context, prefix string) (map[string]KeyTTL, error)
}
