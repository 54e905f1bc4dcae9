package consul

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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
	base  http.RoundTripper
	n     atomic.Int64
	lists atomic.Int64 // KV requests with ?recurse
}

func (t *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	defer t.n.Add(-1)
	if r.URL.Query().Has("recurse") {
		t.lists.Add(1)
	}
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

// changeAndExpect writes value to keys, then expects it as the next update
// of every watch in chans (each watches one of keys).
func changeAndExpect(t *testing.T, s *Store, keys []string, chans []<-chan kv.KeyUpdate, value string) {
	t.Helper()
	for _, k := range keys {
		if err := s.Put(t.Context(), k, []byte(value), nil); err != nil {
			t.Fatal(err)
		}
	}
	for i, ch := range chans {
		if got := valueOf(next(t, ch)); got != value {
			t.Fatalf("watch %d: update %q, want %q", i, got, value)
		}
	}
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
// directory hub dissolves into a key hub per key, whose watches still see
// their changes; later watches there use key hubs too, up to soloLimit,
// then a directory hub again.
func TestWatchesBesideABigSubtreeRunAlone(t *testing.T) {
	s, tr := storeCountingRequests(t)
	ctx := t.Context()
	for i := range sparseLimit(2) + 1 {
		if err := s.Put(ctx, fmt.Sprintf("big/sub/k%03d", i), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	var chans []<-chan kv.KeyUpdate
	// Four watches of big/a, then one of big/b: the first List dissolves
	// the directory hub into one key hub per key, not one per watch.
	for _, k := range []string{"big/a", "big/b"} {
		if err := s.Put(ctx, k, []byte("0"), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"big/a", "big/a", "big/a", "big/a", "big/b"} {
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
		sp := s.hubs.sparse[hubKey{dir: s.consulKey("big/")}]
		return sp != nil && sp.keyHubs == 2
	})
	poll.Until(t, 10*time.Second, "a request in flight per key", func() bool { return tr.n.Load() == 2 })
	changeAndExpect(t, s, []string{"big/a", "big/b"}, chans, "1")
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

// Keys right below the root use a key hub each: sharing a List of the
// root would list the whole Store on every write.
func TestWatchesOfRootKeysNeverListTheRoot(t *testing.T) {
	s, tr := storeCountingRequests(t)
	ctx := t.Context()
	var chans []<-chan kv.KeyUpdate
	for _, k := range []string{"ra", "rb"} {
		if err := s.Put(ctx, k, []byte("0"), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"ra", "rb", "rb"} {
		ch, err := s.Watch(ctx, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		next(t, ch)
		chans = append(chans, ch)
	}
	poll.Until(t, 10*time.Second, "a request in flight per key", func() bool { return tr.n.Load() == 2 })
	changeAndExpect(t, s, []string{"ra", "rb"}, chans, "1")
	if n := tr.lists.Load(); n != 0 {
		t.Fatalf("%d List requests, want none", n)
	}
}

// fakeKV is an agent's KV endpoint for one test: blocking Gets of keys,
// Lists (recurse) refused or failing as the test says, Gets after the
// first failing once failGets is set.
type fakeKV struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every set
	index    uint64
	keys     map[string]*api.KVPair
	refuse   bool // Lists answer 403
	failGets atomic.Bool
	requests atomic.Int64
}

func newFakeKV() *fakeKV {
	return &fakeKV{changed: make(chan struct{}), keys: map[string]*api.KVPair{}, index: 10}
}

func (f *fakeKV) set(key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.keys[key] = &api.KVPair{Key: key, Value: []byte(value), CreateIndex: f.index, ModifyIndex: f.index}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeKV) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	key, ok := strings.CutPrefix(r.URL.Path, "/v1/kv/")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	if q.Has("recurse") && f.refuse {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("Permission denied"))
		return
	}
	wait, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	if wait > 0 && f.failGets.Load() {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("injected"))
		return
	}
	for {
		f.mu.Lock()
		p, changed, index := f.keys[key], f.changed, f.index
		f.mu.Unlock()
		answer := index
		if p != nil {
			answer = p.ModifyIndex
		}
		if wait == 0 || answer > wait {
			w.Header().Set("X-Consul-Index", strconv.FormatUint(answer, 10))
			if p == nil {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			_ = json.NewEncoder(w).Encode([]*api.KVPair{p})
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

func storeOnFake(t *testing.T, f http.Handler, retryTimeout time.Duration) *Store {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := api.NewClient(&api.Config{Address: srv.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{SessionTTLMin: time.Second, LockTTL: 3 * time.Second, RetryTimeout: retryTimeout}
	s, err := NewFromClient(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// A token that may read keys but not list their directory: the watches
// there go on with a key hub each instead of failing.
func TestWatchesWhereListingIsRefused(t *testing.T) {
	f := newFakeKV()
	f.refuse = true
	f.set("regent/d/a", "0")
	f.set("regent/d/b", "0")
	s := storeOnFake(t, f, 5*time.Second)
	ctx := t.Context()
	a, err := s.Watch(ctx, "d/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	next(t, a)
	b, err := s.Watch(ctx, "d/b", nil)
	if err != nil {
		t.Fatal(err)
	}
	next(t, b)
	poll.Until(t, 10*time.Second, "the directory known as not listable", func() bool {
		s.hubs.mu.Lock()
		defer s.hubs.mu.Unlock()
		sp := s.hubs.sparse[hubKey{dir: "regent/d/"}]
		return sp != nil && sp.unlistable && sp.keyHubs == 2
	})
	f.set("regent/d/a", "1")
	f.set("regent/d/b", "1")
	for _, ch := range []<-chan kv.KeyUpdate{a, b} {
		if got := valueOf(next(t, ch)); got != "1" {
			t.Fatalf("update %q, want 1", got)
		}
	}
}

// A shared query that keeps failing ends its watches with the error after
// Config.RetryTimeout, in-band, having backed off meanwhile.
func TestSharedWatchFailsInBandAfterRetryTimeout(t *testing.T) {
	f := newFakeKV()
	f.set("regent/d/a", "0")
	s := storeOnFake(t, f, time.Second)
	ch, err := s.Watch(t.Context(), "d/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch)
	f.failGets.Store(true)
	f.set("regent/d/a", "1") // the blocking Get in flight answers; the next ones fail
	deadline := time.After(10 * time.Second)
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				t.Fatal("closed without an error update")
			}
			if u.Err == nil {
				continue
			}
			if !errors.Is(u.Err, kv.ErrNotReachable) || !strings.Contains(u.Err.Error(), `"d/a"`) {
				t.Fatalf("error %v, want kv.ErrNotReachable naming d/a", u.Err)
			}
			if n := f.requests.Load(); n > 100 {
				t.Fatalf("%d requests in about a second of failures: no backoff", n)
			}
			if _, ok := <-ch; ok {
				t.Fatal("channel not closed after the error update")
			}
			return
		case <-deadline:
			t.Fatal("no error update within 10s (RetryTimeout 1s)")
		}
	}
}

// heldGet is a fakeKV whose next non-blocking Get is answered, then held
// until released: a first read that is slow to come back.
type heldGet struct {
	*fakeKV
	holdNext atomic.Bool
	answered chan struct{} // the held read has been answered by the fake
	release  chan struct{}
}

func (h *heldGet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("index") != "" || !h.holdNext.CompareAndSwap(true, false) {
		h.fakeKV.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	h.fakeKV.ServeHTTP(rec, r)
	close(h.answered)
	<-h.release
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// Two Watches of one key join a hub before it starts; the one whose first
// read is older primes last. The hub, started by the other from its newer
// index, must go back to the older one, or the first watch would never
// see the change between the two reads.
func TestWatchWhoseFirstReadIsOlderPrimesLast(t *testing.T) {
	f := newFakeKV()
	f.set("regent/d/a", "0")
	h := &heldGet{fakeKV: f, answered: make(chan struct{}), release: make(chan struct{})}
	h.holdNext.Store(true)
	s := storeOnFake(t, h, 0)
	ctx := t.Context()
	type watchResult struct {
		ch  <-chan kv.KeyUpdate
		err error
	}
	first := make(chan watchResult, 1)
	go func() {
		ch, err := s.Watch(ctx, "d/a", nil) // its read shows 0, and is held
		first <- watchResult{ch, err}
	}()
	<-h.answered
	f.set("regent/d/a", "1")
	second, err := s.Watch(ctx, "d/a", nil) // reads 1, starts the hub
	if err != nil {
		t.Fatal(err)
	}
	if got := valueOf(next(t, second)); got != "1" {
		t.Fatalf("second watch: first update %q, want 1", got)
	}
	close(h.release)
	r := <-first
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := valueOf(next(t, r.ch)); got != "0" {
		t.Fatalf("first watch: first update %q, want 0 (its read)", got)
	}
	if got := valueOf(next(t, r.ch)); got != "1" {
		t.Fatalf("first watch: update %q, want 1", got)
	}
}
