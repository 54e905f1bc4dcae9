package consul

import (
	"context"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv"
)

var _ kv.TTLReporter = (*Store)(nil)

// TTLs implements kv.TTLReporter: the keys below prefix held by a
// session, with the TTL the session carries (twice its own, see
// sessionTTL), one session read per session. The session's name tells a
// KeepAlive key ("regent-keepalive") from a TTL key; Consul does not say
// how much of a session's TTL is left.
func (s *Store) TTLs(ctx context.Context, prefix string) (map[string]kv.KeyTTL, error) {
	ctx, done := kv.BoundRequest(ctx, s.cfg.RequestTimeout)
	defer done()
	p, err := s.checkPrefix(ctx, "ttls", prefix)
	if err != nil {
		return nil, err
	}
	entries, _, err := s.kv.List(s.consulDir(p), (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, s.translate(ctx, "ttls", p, err)
	}
	bySession := map[string][]string{}
	for _, e := range entries {
		if k, ok := s.userKey(e.Key); ok && e.Session != "" {
			bySession[e.Session] = append(bySession[e.Session], k)
		}
	}
	out := make(map[string]kv.KeyTTL, len(entries))
	for id, keys := range bySession {
		info, _, err := s.client.Session().Info(id, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, s.translate(ctx, "ttls", p, err)
		}
		if info == nil {
			continue // invalidated since the listing: its keys are gone
		}
		d, err := time.ParseDuration(info.TTL)
		if err != nil || d <= 0 {
			continue // not a session regent made: no TTL to tell
		}
		t := kv.KeyTTL{TTL: 2 * d, KeepAlive: info.Name == "regent-keepalive"}
		for _, k := range keys {
			out[k] = t
		}
	}
	return out, nil
}
