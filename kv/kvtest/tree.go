package kvtest

import (
	"strings"

	"github.com/regentkv/regent/kv"
)

func treeCases() []testCase {
	return []testCase{
		{name: "ListIsDirectoryNotBytePrefix", run: testListNotSibling},
		{name: "ListPrefixForms", run: testListPrefixForms},
		{name: "ListNestedSorted", run: testListNestedSorted},
		{name: "ListMissingPrefix", run: testListMissing},
		{name: "ListRoot", run: testListRoot},
		{name: "ListMatchesGet", run: testListMatchesGet},
		{name: "DeleteTree", run: testDeleteTree},
		{name: "DeleteTreeMissing", run: testDeleteTreeMissing},
		{name: "DeleteTreePrefixForms", run: testDeleteTreeForms},
	}
}

func testListNotSibling(e *env) {
	s := e.store()
	e.mustPut(s, e.key("a"), "a", nil)
	e.mustPut(s, e.key("a", "x"), "ax", nil)
	e.mustPut(s, e.key("ab"), "ab", nil)
	e.mustPut(s, e.key("ab", "y"), "aby", nil)
	e.wantList(s, e.key("a"), map[string]string{e.key("a", "x"): "ax"})
	e.wantList(s, e.key("ab"), map[string]string{e.key("ab", "y"): "aby"})
}

func testListPrefixForms(e *env) {
	s := e.store()
	want := map[string]string{e.key("d", "1"): "1", e.key("d", "2"): "2"}
	for k, v := range want {
		e.mustPut(s, k, v, nil)
	}
	d := e.key("d")
	for _, form := range []string{d, "/" + d, d + "/", "/" + d + "/"} {
		e.wantList(s, form, want)
	}
}

func testListNestedSorted(e *env) {
	s := e.store()
	want := map[string]string{}
	// Written out of order, at depths 1 to 4, with keys that sort
	// differently as paths and as bytes ("b/c" vs "b-c").
	for _, rel := range []string{"z", "b/c/d/e", "a", "b/c", "b-c", "b/a", "m/n/o"} {
		k := e.key(strings.Split(rel, "/")...)
		e.mustPut(s, k, rel, nil)
		want[k] = rel
	}
	e.wantList(s, e.prefix, want)
	sub := map[string]string{}
	for k, v := range want {
		if strings.HasPrefix(k, e.key("b")+"/") {
			sub[k] = v
		}
	}
	e.wantList(s, e.key("b"), sub)
}

func testListMissing(e *env) {
	s := e.store()
	e.mustPut(s, e.key("other"), "x", nil)
	l, err := s.List(e.ctx, e.key("nothing", "here"), nil)
	if err != nil || len(l) != 0 {
		e.Fatalf("List(missing) = %s, %v; want empty, nil", fmtPairs(l), err)
	}
}

func testListRoot(e *env) {
	s := e.store()
	k := e.key("r")
	e.mustPut(s, k, "root-visible", nil)
	for _, root := range []string{"", "/"} {
		l, err := s.List(e.ctx, root, nil)
		if err != nil {
			e.Fatalf("List(%q): %v", root, err)
		}
		found := false
		for i, p := range l {
			if i > 0 && l[i-1].Key >= p.Key {
				e.Fatalf("List(%q) not sorted: %q before %q", root, l[i-1].Key, p.Key)
			}
			if strings.Contains(p.Key, kv.ReservedSegmentPrefix) {
				e.Fatalf("List(%q) shows internal key %q", root, p.Key)
			}
			found = found || (p.Key == k && string(p.Value) == "root-visible")
		}
		if !found {
			e.Fatalf("List(%q) (%d pairs) lacks %q", root, len(l), k)
		}
	}
}

func testListMatchesGet(e *env) {
	s := e.store()
	for _, n := range []string{"1", "2", "3"} {
		e.mustPut(s, e.key(n), "v"+n, nil)
	}
	l, err := s.List(e.ctx, e.prefix, nil)
	if err != nil {
		e.Fatalf("List: %v", err)
	}
	for _, p := range l {
		g := e.mustGet(s, p.Key)
		if !samePairs([]*kv.KVPair{p}, []*kv.KVPair{g}) {
			e.Fatalf("List pair %s differs from Get %s", fmtPairs([]*kv.KVPair{p}), fmtPairs([]*kv.KVPair{g}))
		}
	}
}

func testDeleteTree(e *env) {
	s := e.store()
	t := e.key("t")
	e.mustPut(s, t, "prefix key", nil)
	for _, rel := range []string{"a", "b/c", "b/c/d/e", "z/y"} {
		e.mustPut(s, t+"/"+rel, rel, nil)
	}
	e.mustPut(s, e.key("tt", "x"), "sibling", nil)
	e.mustPut(s, e.key("t2"), "sibling", nil)
	if err := s.DeleteTree(e.ctx, t); err != nil {
		e.Fatalf("DeleteTree(%q): %v", t, err)
	}
	e.wantList(s, t, map[string]string{})
	e.wantValue(s, t, "prefix key")
	e.wantList(s, e.prefix, map[string]string{
		t:                "prefix key",
		e.key("tt", "x"): "sibling",
		e.key("t2"):      "sibling",
	})
}

func testDeleteTreeMissing(e *env) {
	s := e.store()
	if err := s.DeleteTree(e.ctx, e.key("nothing")); err != nil {
		e.Fatalf("DeleteTree(missing) = %v, want nil", err)
	}
}

func testDeleteTreeForms(e *env) {
	s := e.store()
	d := e.key("d")
	e.mustPut(s, d+"/x", "x", nil)
	if err := s.DeleteTree(e.ctx, "/"+d+"/"); err != nil {
		e.Fatalf("DeleteTree(%q): %v", "/"+d+"/", err)
	}
	e.wantMissing(s, d+"/x")
}
