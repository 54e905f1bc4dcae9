package consul

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv"
)

// ErrPermissionDenied is matched (errors.Is) by errors of requests the ACL
// token is not allowed to make (HTTP 403). It matches kv.ErrPermissionDenied
// too.
var ErrPermissionDenied = fmt.Errorf("consul: %w", kv.ErrPermissionDenied)

// translate maps an error of the consul/api client to the kv sentinels, in
// one place. A cancelled ctx wins over whatever the transport made of it, so
// that callers can test errors.Is(err, context.Canceled).
func (s *Store) translate(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// A RequestTimeoutError (the Store's bound) matches ErrNotReachable.
		return fmt.Errorf("consul: %s %q: %w", op, key, kv.CtxErr(ctx))
	}
	if s.closed.Load() {
		return fmt.Errorf("consul: %s %q: %w", op, key, kv.ErrClosed)
	}
	var se api.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Code == http.StatusForbidden:
			refusal := aclRefusal(se.Body)
			if refusal == nil {
				refusal = ErrPermissionDenied
			}
			return fmt.Errorf("consul: %s %q: %w: %w", op, key, refusal, err)
		case se.Code == http.StatusRequestEntityTooLarge:
			return fmt.Errorf("consul: %s %q: %w: %w", op, key, kv.ErrValueTooLarge, err)
		case se.Code >= 500 || se.Code == http.StatusTooManyRequests:
			return fmt.Errorf("consul: %s %q: %w: %w", op, key, kv.ErrNotReachable, err)
		}
		return fmt.Errorf("consul: %s %q: %w", op, key, err)
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return fmt.Errorf("consul: %s %q: %w: %w", op, key, kv.ErrNotReachable, err)
	}
	return fmt.Errorf("consul: %s %q: %w", op, key, err)
}

// aclRefusal classifies what Consul said when its ACLs refused a request:
// kv.ErrAuthFailed for a token it does not know ("ACL not found": a typo,
// a deleted or expired token), ErrPermissionDenied for a known token
// without the right ("Permission denied"), nil for anything else. Consul
// says it at the start of a 403's body, which the client wraps (as a
// StatusError, or "Failed request: " from the txn endpoint), or at the
// start of a rolled-back operation's reason. Only the start counts: a
// reason quotes key names, which may hold any words.
func aclRefusal(said string) error {
	said = strings.TrimPrefix(said, "Failed request: ")
	said = strings.TrimPrefix(said, "Unexpected response code: 403 (")
	switch {
	case strings.HasPrefix(said, "ACL not found"):
		return kv.ErrAuthFailed
	case strings.HasPrefix(said, "Permission denied"):
		return ErrPermissionDenied
	}
	return nil
}

// transient reports whether a translated error may go away by retrying.
func transient(err error) bool {
	return errors.Is(err, kv.ErrNotReachable)
}
