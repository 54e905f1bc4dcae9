package zookeeper

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regentkv/regent/internal/testenv"
)

// TestTreeDropsWholeSubtrees: a directory deleted with keys below it at
// several depths leaves nothing of itself in the watched copy, and every
// cached znode stays listed by its parent (drop walks down the child
// names, so a node its parent did not list would be left behind).
func TestTreeDropsWholeSubtrees(t *testing.T) {
	srv := testenv.ZooKeeper(t)
	ctx := t.Context()
	s, err := New(ctx, Config{Servers: srv.Servers(), Root: fmt.Sprintf("/drop-%d", time.Now().UnixNano()), SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	for _, k := range []string{"w/keep", "w/d/a", "w/d/e/f", "w/d/e/g/h", "w/d/x"} {
		if err := s.Put(ctx, k, []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	tr := s.newTree(s.path("w"), false, true)
	defer tr.close()
	if _, err := tr.load(); err != nil {
		t.Fatal(err)
	}
	if len(tr.nodes) != 9 { // w, keep, d, a, e, f, g, h, x
		t.Fatalf("loaded %d znodes, want 9", len(tr.nodes))
	}
	// DeleteTree leaves the prefix's own znode: everything below it goes.
	if err := s.DeleteTree(ctx, "w/d"); err != nil {
		t.Fatal(err)
	}
	waitDropped(t, tr, s.path("w/d")+"/")
	checkListedByParents(t, tr)
	if _, ok := tr.nodes[s.path("w/keep")]; !ok {
		t.Fatal("a sibling of the deleted directory was dropped")
	}
	// Again, deeper, with the whole directory gone in one child list.
	for _, k := range []string{"w/d/a", "w/d/e/f", "w/d/e/g/h"} {
		if err := s.Put(ctx, k, []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteTree(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	waitDropped(t, tr, s.path("w")+"/")
	checkListedByParents(t, tr)
}

// waitDropped handles tr's events until nothing below prefix is cached.
func waitDropped(t *testing.T, tr *tree, prefix string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := tr.applyQueued(); err != nil {
			t.Fatal(err)
		}
		left := 0
		for p := range tr.nodes {
			if strings.HasPrefix(p, prefix) {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d znodes below %s still cached", left, prefix)
		}
		select {
		case <-tr.in.wake:
		case <-time.After(time.Until(deadline)):
		}
	}
}

func checkListedByParents(t *testing.T, tr *tree) {
	t.Helper()
	for p := range tr.nodes {
		if p == tr.base() {
			continue
		}
		par, ok := tr.nodes[parent(p)]
		if !ok {
			t.Fatalf("%s cached without its parent", p)
		}
		if _, listed := par.children[p[strings.LastIndexByte(p, '/')+1:]]; !listed {
			t.Fatalf("%s cached but not listed by its parent", p)
		}
	}
}

// TestDropWalksDownTheChildNames: drop removes a znode and every znode
// cached below it, at any depth, and only those (a sibling whose name
// extends the dropped one's, "d2" next to "d", stays), reporting a delete
// for each key among them.
func TestDropWalksDownTheChildNames(t *testing.T) {
	tr := &tree{s: &Store{root: "/r"}, in: newInbox("/r/w", false), nodes: map[string]*tnode{}}
	add := func(p string, isKey bool) {
		tr.nodes[p] = &tnode{isKey: isKey}
		if par, ok := tr.nodes[parent(p)]; ok {
			par.addChild(p[strings.LastIndexByte(p, '/')+1:])
		}
	}
	add("/r/w", false)
	add("/r/w/d", true)
	add("/r/w/d/a", true)
	add("/r/w/d/e", false)
	add("/r/w/d/e/f", true)
	add("/r/w/d/e/g", false)
	add("/r/w/d/e/g/h", true)
	add("/r/w/d2", true)
	tr.nodes["/r/w/d"].addChild("listed-unread") // listed, never read
	out := tr.drop("/r/w/d", 42)
	var keys []string
	for _, c := range out {
		if c.pair != nil || c.rev != 42 {
			t.Fatalf("change %+v: want a delete at 42", c)
		}
		keys = append(keys, c.key)
	}
	slices.Sort(keys)
	if want := []string{"w/d", "w/d/a", "w/d/e/f", "w/d/e/g/h"}; !slices.Equal(keys, want) {
		t.Fatalf("deletes %q, want %q", keys, want)
	}
	if len(tr.nodes) != 2 || tr.nodes["/r/w"] == nil || tr.nodes["/r/w/d2"] == nil {
		t.Fatalf("left %v, want /r/w and /r/w/d2", slices.Sorted(maps.Keys(tr.nodes)))
	}
	if _, listed := tr.nodes["/r/w"].children["d"]; listed {
		t.Fatal("the parent still lists the dropped znode")
	}
}
