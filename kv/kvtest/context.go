package kvtest

import (
	"context"
	"time"

	"github.com/regentkv/regent/kv"
)

func contextCases() []testCase {
	return []testCase{
		{name: "CancelledContextStore", run: testCancelledStore},
		{name: "CancelledContextLocker", run: testCancelledLocker},
		{name: "DeadlineExceeded", run: testDeadlineExceeded},
	}
}

func testCancelledStore(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v", nil)
	e.wantAll(storeCalls(s, k), cancelled(), context.Canceled)
	if st, ok := s.(kv.Streamer); ok {
		e.wantAll(streamerCalls(st, e.prefix), cancelled(), context.Canceled)
	}
	e.wantValue(s, k, "v")
}

func testCancelledLocker(e *env) {
	s := e.store()
	free, held := e.newLocker(s), e.newLocker(e.store())
	e.wantAll(lockerCalls(free, e.key("g")), cancelled(), context.Canceled)
	e.mustLock(held)
	e.wantAll(lockerCalls(held, e.key("g")), cancelled(), context.Canceled)
	e.wantMissing(s, e.key("g"))
	e.mustUnlock(held)
}

func testDeadlineExceeded(e *env) {
	s := e.store()
	ctx, cancel := context.WithDeadline(e.ctx, time.Now().Add(-time.Second))
	defer cancel()
	e.wantAll(storeCalls(s, e.key("k")), ctx, context.DeadlineExceeded)
}
