package etcd

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// createWait bounds how long closing a watch waits for the server to
// confirm its creation.
const createWait = 5 * time.Second

// watchStream is one etcd watch that is cancelled only once the server has
// confirmed creating it. While an earlier version cancelled watches whose
// creation was still pending, the conformance suite's goroutine count
// caught the etcd client's shared gRPC watch stream (and a goroutine on
// each side) staying open afterwards; we could not isolate a standalone
// reproducer, so this is a precaution against that observed leak rather
// than a fix for a known client bug. The watch's own context ends only with
// the Store or with close, never directly with the caller's.
type watchStream struct {
	w       clientv3.WatchChan
	cancel  context.CancelFunc
	created bool
}

func (s *Store) openWatch(key string, opts ...clientv3.OpOption) *watchStream {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	opts = append(opts, clientv3.WithCreatedNotify())
	return &watchStream{w: s.c.Watch(ctx, key, opts...), cancel: cancel}
}

// next returns the next response; ok is false when the watch ended (the
// channel closed) or ctx ended.
func (ws *watchStream) next(ctx context.Context) (resp clientv3.WatchResponse, ok bool) {
	select {
	case resp, ok = <-ws.w:
		if ok && resp.Created {
			ws.created = true
		}
		return resp, ok
	case <-ctx.Done():
		return clientv3.WatchResponse{}, false
	}
}

// close cancels the watch, after its creation if that is still pending
// (for at most createWait), and waits for its channel to close.
func (ws *watchStream) close() {
	if !ws.created {
		t := time.NewTimer(createWait)
	wait:
		for {
			select {
			case resp, ok := <-ws.w:
				if !ok || resp.Created {
					break wait
				}
			case <-t.C:
				break wait
			}
		}
		t.Stop()
	}
	ws.cancel()
	for range ws.w { //nolint:revive // draining until the client closes it
	}
}
