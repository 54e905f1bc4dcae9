package consul

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv"
)

var _ kv.TTLReporter = (*Store)(nil)

// ttlReads is how many session reads TTLs keeps in flight.
const ttlReads = 16

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
	out := make(map[string]kv.KeyTTL, len(entries))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ttlReads)
	for id, keys := range bySession {
		g.Go(func() error {
			cctx, done := kv.BoundRequest(gctx, s.cfg.RequestTimeout)
			defer done()
			info, _, err := s.client.Session().Info(id, (&api.QueryOptions{}).WithContext(cctx))
			if err != nil {
				return s.translate(cctx, "ttls", p, err)
			}
			if info == nil {
				return nil // invalidated since the listing: its keys are gone
			}
			d, err := time.ParseDuration(info.TTL)
			if err != nil || d <= 0 {
				return nil // not a session regent made: no TTL to tell
			}
			t := kv.KeyTTL{TTL: 2 * d, KeepAlive: info.Name == "regent-keepalive"}
			mu.Lock()
			defer mu.Unlock()
			for _, k := range keys {
				out[k] = t
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
