package kvtest

import (
	"context"
	"fmt"
	"time"

	"github.com/regentkv/regent/kv"
)

func crudCases() []testCase {
	return []testCase{
		{name: "PutGet", run: testPutGet},
		{name: "PutOverwrites", run: testPutOverwrites},
		{name: "LastIndexChangesOnEveryWrite", run: testLastIndexChanges},
		{name: "GetMissing", run: testGetMissing},
		{name: "DeleteMissing", run: testDeleteMissing},
		{name: "ExistsMissing", run: testExistsMissing},
		{name: "Delete", run: testDelete},
		{name: "KeyFormsEquivalent", run: testKeyForms},
		{name: "UnicodeKeys", run: testUnicodeKeys},
		{name: "KeyCharactersAgreeWithNormalizeKey", run: testKeyCharacters},
		{name: "MaxKeySize", run: testMaxKeySize},
		{name: "DeleteLeavesChildren", run: testDeleteLeavesChildren},
		{name: "ValueOnDirectoryKey", run: testValueOnDirectoryKey},
		{name: "ClientsSeeEachOther", run: testClientsSeeEachOther},
		{name: "ConsistentReads", run: testConsistentReads},
	}
}

func testPutGet(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v1", nil)
	p := e.wantValue(s, k, "v1")
	if ok := e.exists(s, k); !ok {
		e.Fatalf("Exists(%q) = false after Put, want true", k)
	}
	again := e.mustGet(s, k)
	if again.LastIndex != p.LastIndex {
		e.Fatalf("LastIndex changed without a write: %d then %d", p.LastIndex, again.LastIndex)
	}
}

func testPutOverwrites(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v1", nil)
	p1 := e.mustGet(s, k)
	e.mustPut(s, k, "second value", nil)
	p2 := e.wantValue(s, k, "second value")
	if p1.LastIndex == p2.LastIndex {
		e.Fatalf("LastIndex after overwrite = %d, same as before; want a new one", p2.LastIndex)
	}
}

func testLastIndexChanges(e *env) {
	s := e.store()
	k := e.key("k")
	seen := map[uint64]int{}
	for i := range 5 {
		e.mustPut(s, k, "same", nil) // same value: a write all the same
		p := e.mustGet(s, k)
		if j, dup := seen[p.LastIndex]; dup {
			e.Fatalf("write %d got LastIndex %d, already seen at write %d", i, p.LastIndex, j)
		}
		seen[p.LastIndex] = i
	}
	prev := e.mustGet(s, k)
	_, p, err := s.AtomicPut(e.ctx, k, []byte("same"), prev, nil)
	if err != nil {
		e.Fatalf("AtomicPut: %v", err)
	}
	if _, dup := seen[p.LastIndex]; dup {
		e.Fatalf("AtomicPut got LastIndex %d, already seen", p.LastIndex)
	}
}

func testGetMissing(e *env) {
	s := e.store()
	p, err := s.Get(e.ctx, e.key("missing"), nil)
	e.wantErr("Get(missing)", err, kv.ErrKeyNotFound)
	if p != nil {
		e.Fatalf("Get(missing) pair = %+v, want nil", p)
	}
}

func testDeleteMissing(e *env) {
	s := e.store()
	e.wantErr("Delete(missing)", s.Delete(e.ctx, e.key("missing")), kv.ErrKeyNotFound)
}

func testExistsMissing(e *env) {
	s := e.store()
	ok, err := s.Exists(e.ctx, e.key("missing"), nil)
	if ok || err != nil {
		e.Fatalf("Exists(missing) = %t, %v; want false, nil", ok, err)
	}
}

func testDelete(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v", nil)
	if err := s.Delete(e.ctx, k); err != nil {
		e.Fatalf("Delete(%q): %v", k, err)
	}
	e.wantMissing(s, k)
	e.wantErr("second Delete", s.Delete(e.ctx, k), kv.ErrKeyNotFound)
}

func testKeyForms(e *env) {
	s := e.store()
	k := e.key("a", "b")
	e.mustPut(s, "/"+k+"/", "v", nil)
	for _, form := range []string{k, "/" + k, k + "/", "/" + k + "/"} {
		p := e.mustGet(s, form)
		if p.Key != k || string(p.Value) != "v" {
			e.Fatalf("Get(%q) = {%q, %q}, want {%q, %q}", form, p.Key, p.Value, k, "v")
		}
	}
	if err := s.Delete(e.ctx, "/"+k); err != nil {
		e.Fatalf("Delete(%q): %v", "/"+k, err)
	}
	e.wantMissing(s, k+"/")
}

func testUnicodeKeys(e *env) {
	s := e.store()
	want := map[string]string{}
	for _, seg := range []string{"日本語", "emoji-🙂", "Ünïcödé", "with space", "sym!$&'()*+,;=@"} {
		k := e.key(seg, "leaf")
		e.mustPut(s, k, seg, nil)
		e.wantValue(s, k, seg)
		want[k] = seg
	}
	e.wantList(s, e.prefix, want)
}

// keyCharacters are characters at the edges of what backends accept in
// names: invisible and unassigned ones (which Consul's HTTP API refuses in
// paths, and ZooKeeper in znode names), and printable neighbours of them.
var keyCharacters = []rune{
	0x00A0, 0x0085, 0x00AD, 0x200B, 0x2028, 0xE000, 0xFEFF, 0xFFF0, 0x3000, 0x10FFFD, 0xFFFF,
	'%', 0x00A1, 0x2030, 0xFFFD, 0x0301, 0x1F600, 0xF8FF + 1, 0xD7FF,
}

// testKeyCharacters pins the rule that a key NormalizeKey accepts works on
// every backend, in every call, and one it rejects is ErrInvalidKey.
func testKeyCharacters(e *env) {
	s := e.store()
	want := map[string]string{}
	for _, r := range keyCharacters {
		k := e.key(fmt.Sprintf("a%cb", r))
		v := fmt.Sprintf("%U", r)
		if _, err := kv.NormalizeKey(k); err != nil {
			e.wantErr(fmt.Sprintf("Put(key with %U, which NormalizeKey rejects)", r), s.Put(e.ctx, k, []byte(v), nil), kv.ErrInvalidKey)
			continue
		}
		if err := s.Put(e.ctx, k, []byte(v), nil); err != nil {
			e.Errorf("Put(key with %U): %v", r, err)
			continue
		}
		want[k] = v
		if p, err := s.Get(e.ctx, k, nil); err != nil || string(p.Value) != v {
			e.Errorf("Get(key with %U) = %s, %v; want %s", r, fmtPairs([]*kv.KVPair{p}), err, v)
		}
		if ok, err := s.Exists(e.ctx, k, nil); !ok || err != nil {
			e.Errorf("Exists(key with %U) = %v, %v; want true", r, ok, err)
		}
		wctx, cancel := context.WithCancel(e.ctx)
		ch, err := s.Watch(wctx, k, nil)
		if err != nil {
			e.Errorf("Watch(key with %U): %v", r, err)
		} else if u, ok := recv(e, ch, 10*time.Second, "first watch update"); ok && (u.Err != nil || u.Pair == nil || string(u.Pair.Value) != v) {
			e.Errorf("Watch(key with %U): first update %+v, want the value %s", r, u, v)
		}
		cancel()
		if ch != nil {
			for range ch {
			}
		}
	}
	e.wantList(s, e.prefix, want)
	for k := range want {
		if err := s.Delete(e.ctx, k); err != nil {
			e.Errorf("Delete(%q): %v", k, err)
		}
	}
	e.wantList(s, e.prefix, map[string]string{})
}

func testMaxKeySize(e *env) {
	s := e.store()
	k := e.key("")
	k += "/"
	for len(k) < kv.MaxKeySize {
		k += "k"
	}
	e.mustPut(s, k, "long", nil)
	e.wantValue(s, k, "long")
	e.wantErr("Put(key of MaxKeySize+1 bytes)", s.Put(e.ctx, k+"x", []byte("v"), nil), kv.ErrInvalidKey)
}

func testDeleteLeavesChildren(e *env) {
	s := e.store()
	a, ab := e.key("a"), e.key("a", "b")
	e.mustPut(s, a, "parent", nil)
	e.mustPut(s, ab, "child", nil)
	if err := s.Delete(e.ctx, a); err != nil {
		e.Fatalf("Delete(%q): %v", a, err)
	}
	e.wantMissing(s, a)
	e.wantValue(s, ab, "child")
}

func testValueOnDirectoryKey(e *env) {
	s := e.store()
	a, ab := e.key("a"), e.key("a", "b")
	e.mustPut(s, ab, "child", nil) // child first: "a" must not be implied
	e.wantMissing(s, a)
	e.mustPut(s, a, "parent", nil)
	e.wantValue(s, a, "parent")
	e.wantValue(s, ab, "child")
	e.wantList(s, a, map[string]string{ab: "child"})
	e.wantList(s, e.prefix, map[string]string{a: "parent", ab: "child"})
}

func testClientsSeeEachOther(e *env) {
	a, b := e.store(), e.store()
	k := e.key("k")
	e.mustPut(a, k, "from a", nil)
	e.wantValue(b, k, "from a")
	e.mustPut(b, k, "from b", nil)
	e.wantValue(a, k, "from b")
	if err := b.Delete(e.ctx, k); err != nil {
		e.Fatalf("Delete: %v", err)
	}
	e.wantMissing(a, k)
}

// testConsistentReads: ReadOptions{Consistent: true} is accepted by every
// read and sees a write another client just made.
func testConsistentReads(e *env) {
	writer, reader := e.store(), e.store()
	k := e.key("d", "k")
	e.mustPut(writer, k, "v", nil)
	c := &kv.ReadOptions{Consistent: true}
	p, err := reader.Get(e.ctx, k, c)
	if err != nil || string(p.Value) != "v" {
		e.Fatalf("Get(Consistent) = %v, %v; want value v", p, err)
	}
	if ok, err := reader.Exists(e.ctx, k, c); !ok || err != nil {
		e.Fatalf("Exists(Consistent) = %t, %v; want true, nil", ok, err)
	}
	l, err := reader.List(e.ctx, e.key("d"), c)
	if err != nil || len(l) != 1 || l[0].Key != k {
		e.Fatalf("List(Consistent) = %s, %v; want [%s]", fmtPairs(l), err, k)
	}
	ch, err := reader.Watch(e.ctx, k, c)
	if err != nil {
		e.Fatalf("Watch(Consistent): %v", err)
	}
	e.wantKeyUpdate(ch, k, "v", false)
}
