package consul

import (
	"errors"
	"testing"

	"github.com/regentkv/regent/kv"
)

// What Consul says when its ACLs refuse, as each client path wraps it,
// is typed; a reason that merely quotes such words in a key name is not.
func TestACLRefusal(t *testing.T) {
	for _, tc := range []struct {
		said string
		want error
	}{
		{"ACL not found", kv.ErrAuthFailed},
		{"Unexpected response code: 403 (ACL not found)", kv.ErrAuthFailed},
		{"Failed request: ACL not found", kv.ErrAuthFailed},
		{`Permission denied: token with AccessorID 'x' lacks permission 'key:write' on "app/k"`, kv.ErrPermissionDenied},
		{"Unexpected response code: 403 (Permission denied: token lacks permission)", kv.ErrPermissionDenied},
		{"Failed request: Permission denied: token lacks permission", kv.ErrPermissionDenied},
		{`key "x/Permission denied" doesn't exist`, nil},
		{`failed to lock key "ACL not found/k": session "s" doesn't exist`, nil},
		{"Unexpected response code: 500 (rpc error: Permission denied)", nil},
	} {
		got := aclRefusal(tc.said)
		if (tc.want == nil) != (got == nil) || (tc.want != nil && !errors.Is(got, tc.want)) {
			t.Errorf("aclRefusal(%q) = %v; want %v", tc.said, got, tc.want)
		}
	}
}
