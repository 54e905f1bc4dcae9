package zookeeper

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// retry runs op with exponential backoff (10 ms to 1 s) until it succeeds,
// returns a permanent error (see permanent), or ctx ends. It is for work
// that must survive a reconnect: re-creating KeepAlive keys, re-arming
// watches after a session expiry.
func retry(ctx context.Context, op func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 10 * time.Millisecond
	b.MaxInterval = time.Second
	b.MaxElapsedTime = 0
	return backoff.Retry(op, backoff.WithContext(b, ctx))
}

func permanent(err error) error { return backoff.Permanent(err) }
