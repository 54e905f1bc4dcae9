package kvtest

import (
	"strings"

	"github.com/regentkv/regent/kv"
)

// invalidKeys are rejected as keys and as prefixes.
func (e *env) invalidKeys() map[string]string {
	return map[string]string{
		"empty segment":       e.prefix + "//b",
		"dot-dot":             "..",
		"dot-dot segment":     e.prefix + "/../b",
		"dot segment":         e.prefix + "/./b",
		"dot":                 ".",
		"NUL":                 e.prefix + "/a\x00b",
		"tab":                 e.prefix + "/a\tb",
		"newline":             e.prefix + "/a\nb",
		"DEL":                 e.prefix + "/a\x7fb",
		"invalid UTF-8":       e.prefix + "/\xff\xfe",
		"zero width space":    e.prefix + "/a\u200bb",
		"no-break space":      e.prefix + "/a\u00a0b",
		"reserved segment":    e.prefix + "/" + kv.ReservedSegmentPrefix + "/x",
		"reserved prefix":     e.prefix + "/" + kv.ReservedSegmentPrefix + "lock",
		"reserved at root":    kv.ReservedSegmentPrefix,
		"over MaxKeySize":     e.prefix + "/" + strings.Repeat("k", kv.MaxKeySize),
		"empty segment first": "//" + e.prefix,
	}
}

// invalidOnlyAsKey are valid prefixes (the root) but invalid keys.
var invalidOnlyAsKey = map[string]string{"empty": "", "slash": "/", "slashes": "//"}

func keyCases() []testCase {
	return []testCase{
		{name: "InvalidKeyPut", run: keyTest(false, func(e *env, s kv.Store, k string) error {
			return s.Put(e.ctx, k, []byte("v"), nil)
		})},
		{name: "InvalidKeyGet", run: keyTest(false, func(e *env, s kv.Store, k string) error {
			_, err := s.Get(e.ctx, k, nil)
			return err
		})},
		{name: "InvalidKeyDelete", run: keyTest(false, func(e *env, s kv.Store, k string) error {
			return s.Delete(e.ctx, k)
		})},
		{name: "InvalidKeyExists", run: keyTest(false, func(e *env, s kv.Store, k string) error {
			_, err := s.Exists(e.ctx, k, nil)
			return err
		})},
		{name: "InvalidKeyAtomicPut", run: keyTest(false, func(e *env, s kv.Store, k string) error {
			_, _, err := s.AtomicPut(e.ctx, k, []byte("v"), nil, nil)
			return err
		})},
		{name: "InvalidKeyAtomicDelete", run: keyTest(false, func(e *env, s kv.Store, k string) error {
			_, err := s.AtomicDelete(e.ctx, k, &kv.KVPair{Key: k, Value: []byte{}, LastIndex: 1})
			return err
		})},
		{name: "InvalidKeyWatch", run: keyTest(false, func(e *env, s kv.Store, k string) error {
			ch, err := s.Watch(e.ctx, k, nil)
			if ch != nil {
				e.Errorf("Watch(%q) returned a channel with error %v", k, err)
			}
			return err
		})},
		{name: "InvalidKeyNewLock", run: keyTest(false, func(e *env, s kv.Store, k string) error {
			l, err := s.NewLock(e.ctx, k, nil)
			if l != nil {
				e.Errorf("NewLock(%q) returned a Locker with error %v", k, err)
			}
			return err
		})},
		{name: "InvalidKeyGuardedWrites", run: testInvalidKeyGuarded},
		{name: "InvalidPrefixList", run: keyTest(true, func(e *env, s kv.Store, k string) error {
			_, err := s.List(e.ctx, k, nil)
			return err
		})},
		{name: "InvalidPrefixDeleteTree", run: keyTest(true, func(e *env, s kv.Store, k string) error {
			return s.DeleteTree(e.ctx, k)
		})},
		{name: "InvalidPrefixWatchTree", run: keyTest(true, func(e *env, s kv.Store, k string) error {
			ch, err := s.WatchTree(e.ctx, k, nil)
			if ch != nil {
				e.Errorf("WatchTree(%q) returned a channel with error %v", k, err)
			}
			return err
		})},
	}
}

// keyTest returns a case that calls op with every invalid key (or prefix)
// and wants ErrInvalidKey each time, then checks nothing was written.
func keyTest(prefix bool, op func(e *env, s kv.Store, k string) error) func(*env) {
	return func(e *env) {
		s := e.store()
		bad := e.invalidKeys()
		if !prefix {
			for n, k := range invalidOnlyAsKey {
				bad[n] = k
			}
		}
		for name, k := range bad {
			if err := op(e, s, k); !errorsIs(err, kv.ErrInvalidKey) {
				e.Errorf("%s key %q: got error %v, want %v", name, k, err, kv.ErrInvalidKey)
			}
		}
		l, err := s.List(e.ctx, e.prefix, nil)
		if err != nil || len(l) != 0 {
			e.Fatalf("after invalid calls List(%q) = %s, %v; want empty", e.prefix, fmtPairs(l), err)
		}
	}
}

func testInvalidKeyGuarded(e *env) {
	s := e.store()
	l, err := s.NewLock(e.ctx, e.key("lock"), &kv.LockOptions{TTL: e.ttl()})
	if err != nil {
		e.Fatalf("NewLock: %v", err)
	}
	if _, err := l.Lock(e.ctx); err != nil {
		e.Fatalf("Lock: %v", err)
	}
	defer func() { _ = l.Unlock(e.ctx) }()
	for name, k := range e.invalidKeys() {
		if err := l.GuardedPut(e.ctx, k, []byte("v"), nil); !errorsIs(err, kv.ErrInvalidKey) {
			e.Errorf("GuardedPut(%s key %q): got %v, want %v", name, k, err, kv.ErrInvalidKey)
		}
		if err := l.GuardedDelete(e.ctx, k); !errorsIs(err, kv.ErrInvalidKey) {
			e.Errorf("GuardedDelete(%s key %q): got %v, want %v", name, k, err, kv.ErrInvalidKey)
		}
	}
}
