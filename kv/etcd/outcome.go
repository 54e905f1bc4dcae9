package etcd

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc/stats"
)

// A write whose error leaves its outcome open (kv.ErrOutcomeUnknown) is
// one whose request may have reached the server. For clients that New
// builds, the driver knows whether it did: a gRPC stats handler marks the
// write's ctx when its request message has been handed to the connection.
// A write that failed before that (no connection could be made, the
// caller's ctx ended while waiting for one) was never applied, and its
// error says so. Clients given to NewFromClient have no such handler:
// there, a failure after the call began is reported as unknown unless the
// error itself proves otherwise (see notSent).

// sentKey keys the *atomic.Bool that the stats handler sets.
type sentKey struct{}

// writeMethods are the KV calls that change data.
var writeMethods = map[string]bool{
	"/etcdserverpb.KV/Put":         true,
	"/etcdserverpb.KV/DeleteRange": true,
	"/etcdserverpb.KV/Txn":         true,
}

// trackSend returns ctx marked so that the stats handler can record
// whether a write request was sent, and the flag it sets. Without a
// tracking client the flag is nil.
func (s *Store) trackSend(ctx context.Context) (context.Context, *atomic.Bool) {
	if !s.tracked {
		return ctx, nil
	}
	sent := new(atomic.Bool)
	return context.WithValue(ctx, sentKey{}, sent), sent
}

// writeTag marks, in an RPC's ctx, that the RPC is a write.
type writeTag struct{}

// sendTracker is the stats handler of the clients New builds.
type sendTracker struct{}

func (sendTracker) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if writeMethods[info.FullMethodName] {
		return context.WithValue(ctx, writeTag{}, true)
	}
	return ctx
}

func (sendTracker) HandleRPC(ctx context.Context, st stats.RPCStats) {
	if _, ok := st.(*stats.OutPayload); !ok || ctx.Value(writeTag{}) == nil {
		return
	}
	if sent, ok := ctx.Value(sentKey{}).(*atomic.Bool); ok {
		sent.Store(true)
	}
}

func (sendTracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (sendTracker) HandleConn(context.Context, stats.ConnStats) {}
