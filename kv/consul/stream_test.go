package consul

import (
	"fmt"
	"testing"

	"github.com/regentkv/regent/kv"
)

func TestDiff(t *testing.T) {
	pair := func(k string, idx uint64) *kv.KVPair { return &kv.KVPair{Key: k, LastIndex: idx, Revision: idx} }
	for _, tc := range []struct {
		name    string
		old     map[string]uint64
		pairs   []*kv.KVPair
		x, prev uint64
		want    string
	}{
		{"nothing changed", map[string]uint64{"a": 5}, []*kv.KVPair{pair("a", 5)}, 9, 9, "[]"},
		{"puts in index order", map[string]uint64{"a": 5},
			[]*kv.KVPair{pair("a", 12), pair("b", 11)}, 12, 10, "[PUT b@11 PUT a@12]"},
		{"last change a delete: the list index", map[string]uint64{"a": 5, "b": 6},
			[]*kv.KVPair{pair("b", 6)}, 14, 10, "[DELETE a@14]"},
		{"delete before a put: below it, above prev", map[string]uint64{"a": 5},
			[]*kv.KVPair{pair("d", 12)}, 12, 10, "[DELETE a@11 PUT d@12]"},
		{"delete skips indexes of puts", map[string]uint64{"a": 5},
			[]*kv.KVPair{pair("c", 11), pair("d", 13)}, 13, 10, "[PUT c@11 DELETE a@12 PUT d@13]"},
		{"deletes of one answer share a revision", map[string]uint64{"a": 1, "b": 2},
			nil, 20, 10, "[DELETE a@20 DELETE b@20]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, next := diff(tc.old, tc.pairs, tc.x, tc.prev)
			var got []string
			for _, e := range events {
				got = append(got, fmt.Sprintf("%v %s@%d", e.Type, e.Pair.Key, e.Pair.Revision))
			}
			if s := fmt.Sprint(got); s != tc.want && (len(got) != 0 || tc.want != "[]") {
				t.Fatalf("got %s, want %s", s, tc.want)
			}
			if len(next) != len(tc.pairs) {
				t.Fatalf("next state has %d keys, want %d", len(next), len(tc.pairs))
			}
		})
	}
}
