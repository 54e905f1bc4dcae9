package kvtest

import (
	"time"

	"github.com/regentkv/regent/kv"
)

// ttlReporterCases run on stores that implement kv.TTLReporter.
func ttlReporterCases() []testCase {
	return []testCase{{name: "TTLsTellWhatExpires", run: testTTLs}}
}

// testTTLs: a permanent key is absent, a TTL key is listed with the TTL
// it was written with (rounded up by at most a second), a KeepAlive key
// is listed with a TTL, a key outside the prefix is not, and a TTL key
// made permanent again drops out.
func testTTLs(e *env) {
	s := e.store()
	r := s.(kv.TTLReporter)
	ttl := 2 * e.ttl()
	e.mustPut(s, e.key("dir/plain"), "v", nil)
	e.mustPut(s, e.key("dir/ttl"), "v", &kv.WriteOptions{TTL: ttl})
	e.mustPut(s, e.key("dir/ka"), "v", &kv.WriteOptions{TTL: ttl, KeepAlive: true})
	e.mustPut(s, e.key("other"), "v", &kv.WriteOptions{TTL: ttl})
	got, err := r.TTLs(e.ctx, e.key("dir"))
	if err != nil {
		e.Fatalf("TTLs: %v", err)
	}
	if len(got) != 2 {
		e.Fatalf("TTLs = %+v, want the TTL key and the KeepAlive key only", got)
	}
	t := got[e.key("dir/ttl")]
	if t.TTL < ttl || t.TTL > ttl+time.Second || t.Remaining > t.TTL || t.KeepAlive {
		e.Fatalf("TTLs of a key written with TTL %v = %+v", ttl, t)
	}
	if ka, ok := got[e.key("dir/ka")]; !ok || ka.TTL <= 0 || ka.Remaining > ka.TTL {
		e.Fatalf("TTLs of a KeepAlive key = %+v, %v", ka, ok)
	}
	e.mustPut(s, e.key("dir/ttl"), "permanent", nil)
	if got, err = r.TTLs(e.ctx, e.key("dir")); err != nil || len(got) != 1 {
		e.Fatalf("TTLs after the TTL key was made permanent = %+v, %v; want the KeepAlive key only", got, err)
	}
	if got, err = r.TTLs(e.ctx, e.key("missing")); err != nil || len(got) != 0 {
		e.Fatalf("TTLs of a prefix without keys = %+v, %v", got, err)
	}
}
