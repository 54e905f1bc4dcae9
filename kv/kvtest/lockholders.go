package kvtest

import (
	"time"

	"github.com/regentkv/regent/kv"
)

// lockHolderCases run on stores that implement kv.LockInspector.
func lockHolderCases() []testCase {
	return []testCase{{name: "LockHoldersFollowTheLock", run: testLockHolders}}
}

// testLockHolders: nobody at first; the holder with its value and token
// while it holds; a waiter, where the backend lists waiters, after it;
// the waiter once it took over; nobody after the last Unlock.
func testLockHolders(e *env) {
	s := e.store()
	in := s.(kv.LockInspector)
	key := e.key("lock")
	holders := func() []kv.LockHolder {
		e.Helper()
		hs, err := in.LockHolders(e.ctx, key)
		if err != nil {
			e.Fatalf("LockHolders: %v", err)
		}
		return hs
	}
	if hs := holders(); len(hs) != 0 {
		e.Fatalf("LockHolders of a lock never taken = %+v, want none", hs)
	}
	newLocker := func(s kv.Store, value string) kv.Locker {
		l, err := s.NewLock(e.ctx, key, &kv.LockOptions{TTL: e.ttl(), Value: []byte(value)})
		if err != nil {
			e.Fatalf("NewLock: %v", err)
		}
		return l
	}
	a, b := newLocker(s, "alpha"), newLocker(e.store(), "beta")
	e.mustLock(a)
	hs := holders()
	if len(hs) != 1 || !hs[0].Holding || string(hs[0].Value) != "alpha" || hs[0].Token != a.Token() || hs[0].ID == "" {
		e.Fatalf("LockHolders while alpha holds (token %d) = %+v", a.Token(), hs)
	}
	res := lockAsync(e.ctx, b)
	quiet(e, res, 200*time.Millisecond, "beta's Lock while alpha holds")
	hs = holders()
	if !hs[0].Holding || string(hs[0].Value) != "alpha" {
		e.Fatalf("LockHolders with beta waiting = %+v: alpha first, holding", hs)
	}
	for _, w := range hs[1:] {
		if w.Holding || string(w.Value) != "beta" || w.Token != 0 {
			e.Fatalf("LockHolders with beta waiting = %+v: beta waits, without a token", hs)
		}
	}
	e.mustUnlock(a)
	if r := next(e, res, updateWait, "beta's Lock after alpha's Unlock"); r.err != nil {
		e.Fatalf("beta's Lock: %v", r.err)
	}
	e.eventually(updateWait, "beta listed as the holder", func() bool {
		hs = holders()
		return len(hs) == 1 && hs[0].Holding && string(hs[0].Value) == "beta" && hs[0].Token == b.Token()
	})
	e.mustUnlock(b)
	e.eventually(updateWait, "nobody listed after the last Unlock", func() bool { return len(holders()) == 0 })
}
