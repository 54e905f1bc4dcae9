package consul

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"

	"github.com/regentkv/regent/internal/poll"
	"github.com/regentkv/regent/kv"
)

// inFlight counts the requests a client has in flight: a blocking query
// is in flight until the agent answers it.
type inFlight struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (t *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	defer t.n.Add(-1)
	return t.base.RoundTrip(r)
}

// storeCountingRequests is a Store on the shared agent whose requests in
// flight are counted, under a root of the test's own.
func storeCountingRequests(t *testing.T) (*Store, *inFlight) {
	t.Helper()
	tr := &inFlight{base: cleanhttp.DefaultPooledTransport()}
	c, err := api.NewClient(&api.Config{Address: agent(t).Addr, HttpClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("")
	cfg.Addresses = nil
	cfg.Root = fmt.Sprintf("hub-%s-%d", t.Name(), rand.Uint32())
	s, err := NewFromClient(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, tr
}

func next(t *testing.T, ch <-chan kv.KeyUpdate) kv.KeyUpdate {
	t.Helper()
	select {
	case u, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		if u.Err != nil {
			t.Fatalf("watch: %v", u.Err)
		}
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no update within 10s")
	}
	return kv.KeyUpdate{}
}

func valueOf(u kv.KeyUpdate) string {
	if u.Pair == nil {
		return "<absent>"
	}
	return string(u.Pair.Value)
}

// Watches of keys in one directory hold one request between them, and
// each still sees its own key's changes, and only those.
func TestWatchesOfOneDirectoryShareAQuery(t *testing.T) {
	s, tr := storeCountingRequests(t)
	ctx := t.Context()
	const n = 40
	key := func(i int) string { return fmt.Sprintf("d/k%02d", i) }
	for i := range n {
		if err := s.Put(ctx, key(i), []byte("v0"), nil); err != nil {
			t.Fatal(err)
		}
	}
	chans := make([]<-chan kv.KeyUpdate, n+1)
	for i := range n {
		ch, err := s.Watch(ctx, key(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := valueOf(next(t, ch)); got != "v0" {
			t.Fatalf("%s: first update %q, want v0", key(i), got)
		}
		chans[i] = ch
	}
	// A key that does not exist yet, in the same directory.
	missing, err := s.Watch(ctx, "d/later", nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := next(t, missing); u.Pair != nil {
		t.Fatalf("d/later: first update %+v, want absent", u)
	}
	chans[n] = missing
	poll.Until(t, 10*time.Second, "one request in flight for the watches", func() bool { return tr.n.Load() == 1 })

	for round := 1; round <= 2; round++ {
		v := fmt.Sprintf("v%d", round)
		for i := range n {
			if err := s.Put(ctx, key(i), []byte(v), nil); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			// The next update is this round's: no other key's change, nor
			// the hub's answers to them, reached this watch.
			if got := valueOf(next(t, chans[i])); got != v {
				t.Fatalf("%s: update %q, want %q", key(i), got, v)
			}
		}
	}
	if err := s.Put(ctx, "d/later", []byte("here"), nil); err != nil {
		t.Fatal(err)
	}
	if got := valueOf(next(t, missing)); got != "here" {
		t.Fatalf("d/later: update %q, want here", got)
	}
	if err := s.Delete(ctx, key(0)); err != nil {
		t.Fatal(err)
	}
	if u := next(t, chans[0]); u.Pair != nil {
		t.Fatalf("%s: update %+v after its delete, want absent", key(0), u)
	}
	poll.Until(t, 10*time.Second, "one request in flight after the changes", func() bool { return tr.n.Load() == 1 })
}

// Watches join while their keys change under them: each one's updates
// only move forward and end at the key's last value, whatever the order
// of its join, its first read and the hub's answers.
func TestWatchJoiningWhileItsKeyChanges(t *testing.T) {
	s, _ := storeCountingRequests(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	keys := []string{"j/a", "j/b", "j/c"}
	const writes = 300
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= writes; i++ {
			if err := s.Put(ctx, keys[i%len(keys)], []byte(strconv.Itoa(i)), nil); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	type watcher struct {
		key string
		ch  <-chan kv.KeyUpdate
	}
	var ws []watcher
	for range 30 {
		k := keys[rng.IntN(len(keys))]
		ch, err := s.Watch(ctx, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, watcher{k, ch})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	final := map[string]int{}
	for _, k := range keys {
		p, err := s.Get(ctx, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		final[k], _ = strconv.Atoi(string(p.Value))
	}
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := -1
			for last != final[w.key] {
				select {
				case u := <-w.ch:
					if u.Err != nil {
						t.Errorf("watch %d of %s: %v", i, w.key, u.Err)
						return
					}
					v := 0
					if u.Pair != nil {
						v, _ = strconv.Atoi(string(u.Pair.Value))
					}
					if v <= last {
						t.Errorf("watch %d of %s: %d after %d", i, w.key, v, last)
						return
					}
					last = v
				case <-time.After(10 * time.Second):
					t.Errorf("watch %d of %s: at %d, not the final %d, after 10s", i, w.key, last, final[w.key])
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Two watched keys beside a big subtree do not share a listing of it: the
// hub dissolves and each watch runs its own query, and still sees its
// changes; later watches there start alone.
func TestWatchesBesideABigSubtreeRunAlone(t *testing.T) {
	s, tr := storeCountingRequests(t)
	ctx := t.Context()
	for i := range sparseLimit(2) + 1 {
		if err := s.Put(ctx, fmt.Sprintf("big/sub/k%03d", i), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	var chans []<-chan kv.KeyUpdate
	for _, k := range []string{"big/a", "big/b"} {
		if err := s.Put(ctx, k, []byte("0"), nil); err != nil {
			t.Fatal(err)
		}
		ch, err := s.Watch(ctx, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		next(t, ch)
		chans = append(chans, ch)
	}
	poll.Until(t, 10*time.Second, "the directory marked too sparse to share", func() bool {
		s.hubs.mu.Lock()
		defer s.hubs.mu.Unlock()
		return s.hubs.sparse[hubKeyOf(s.consulKey("big/a"), false)] == 2
	})
	poll.Until(t, 10*time.Second, "a request in flight per watch", func() bool { return tr.n.Load() == 2 })
	for i, k := range []string{"big/a", "big/b"} {
		if err := s.Put(ctx, k, []byte("1"), nil); err != nil {
			t.Fatal(err)
		}
		if got := valueOf(next(t, chans[i])); got != "1" {
			t.Fatalf("%s: update %q, want 1", k, got)
		}
	}
	// Watched key by key, the directory runs at most soloLimit watches
	// alone; the others share one query.
	more := map[string]<-chan kv.KeyUpdate{}
	for i := range soloLimit + 8 {
		k := fmt.Sprintf("big/c%02d", i)
		if err := s.Put(ctx, k, []byte("0"), nil); err != nil {
			t.Fatal(err)
		}
		ch, err := s.Watch(ctx, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		next(t, ch)
		more[k] = ch
	}
	poll.UntilFunc(t, 10*time.Second, func() string {
		return fmt.Sprintf("%d requests in flight (%d alone, one shared), not %d", soloLimit+1, soloLimit, tr.n.Load())
	}, func() bool { return tr.n.Load() == soloLimit+1 })
	for k, ch := range more {
		if err := s.Put(ctx, k, []byte("1"), nil); err != nil {
			t.Fatal(err)
		}
		if got := valueOf(next(t, ch)); got != "1" {
			t.Fatalf("%s: update %q, want 1", k, got)
		}
	}
}
