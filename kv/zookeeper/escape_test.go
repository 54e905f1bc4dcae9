package zookeeper

import "testing"

func TestEscapeRoundTrip(t *testing.T) {
	for _, tc := range []struct{ key, znode string }{
		{"plain/key", "plain/key"},
		{"100%", "100%25"},
		{"emoji-🙂/x", "emoji-%F0%9F%99%82/x"},
		{"private-\ue000", "private-%EE%80%80"},
		{"c1-\u0085", "c1-%C2%85"},
		{"bom-\ufffe", "bom-%EF%BF%BE"},
		{"accent-é", "accent-é"},
	} {
		got := escapeKey(tc.key)
		if got != tc.znode {
			t.Errorf("escapeKey(%q) = %q, want %q", tc.key, got, tc.znode)
		}
		if back := unescapeKey(got); back != tc.key {
			t.Errorf("unescapeKey(%q) = %q, want %q", got, back, tc.key)
		}
	}
}

func TestEscapePlainKeyDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = unescapeKey(escapeKey("a/b/c")) }); n != 0 {
		t.Fatalf("escaping a plain key allocates %v times, want 0", n)
	}
}
