package consul

import (
	"context"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/internal/driver"
)

var _ kv.TTLReporter = (*Store)(nil)

// TTLs implements kv.TTLReporter: the keys below prefix held by a
// session, with the TTL the session carries (twice its own, see
// sessionTTL), one session read per session. The session's name tells a
// KeepAlive key ("regent-keepalive") from a TTL key; Consul does not say
// how much of a session's TTL is left.
//
// Each call is bounded on its own (Config.RequestTimeout), the session
// reads a few at a time: a tree of many TTL keys has as many sessions.
func (s *Store) TTLs(ctx context.Context, prefix string) (map[string]kv.KeyTTL, error) {
	p, err := s.checkPrefix(ctx, "ttls", prefix)
	if err != nil {
		return nil, err
	}
	lctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	entries, _, err := s.kv.List(s.consulDir(p), (&api.QueryOptions{}).WithContext(lctx))
	if err != nil {
		return nil, s.translate(lctx, "ttls", p, err)
	}
	bySession := map[string][]string{}
	for _, e := range entries {
		if k, ok := s.userKey(e.Key); ok && e.Session != "" {
			bySession[e.Session] = append(bySession[e.Session], k)
		}
	}
	return driver.TTLsByHolder(ctx, s.cfg.RequestTimeout, bySession, func(ctx context.Context, id string) (kv.KeyTTL, bool, error) {
		info, _, err := s.client.Session().Info(id, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return kv.KeyTTL{}, false, s.translate(ctx, "ttls", p, err)
		}
		if info == nil {
			return kv.KeyTTL{}, false, nil // invalidated since the listing: its keys are gone
		}
		d, err := time.ParseDuration(info.TTL)
		if err != nil || d <= 0 {
			return kv.KeyTTL{}, false, nil // not a session regent made: no TTL to tell
		}
		return kv.KeyTTL{TTL: 2 * d, KeepAlive: info.Name == "regent-keepalive"}, true, nil
	})
}
