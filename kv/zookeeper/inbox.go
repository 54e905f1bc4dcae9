package zookeeper

import (
	"strings"
	"sync"

	"github.com/go-zookeeper/zk"
)

// inbox collects the connection events of one watcher. The Store's event
// callback fills it without blocking; the watcher's goroutine empties it.
// It cannot grow without bound: ZooKeeper watches are one-shot, so each
// armed watch (two per znode of the watched tree) fires at most once before
// the watcher re-arms it, plus a few session events.
type inbox struct {
	base   string // znode of the watched prefix or key
	single bool   // only base itself

	mu   sync.Mutex
	evs  []zk.Event
	wake chan struct{} // cap 1
}

func newInbox(base string, single bool) *inbox {
	return &inbox{base: base, single: single, wake: make(chan struct{}, 1)}
}

func (in *inbox) offer(ev zk.Event) {
	if ev.Type != zk.EventSession && ev.Type != zk.EventNotWatching &&
		ev.Path != in.base && (in.single || !strings.HasPrefix(ev.Path, in.base+"/")) {
		return
	}
	in.mu.Lock()
	in.evs = append(in.evs, ev)
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// pending reports whether events wait to be taken.
func (in *inbox) pending() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.evs) > 0
}

func (in *inbox) take() []zk.Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	evs := in.evs
	in.evs = nil
	return evs
}

func (s *Store) subscribe(in *inbox) {
	s.mu.Lock()
	s.subs[in] = struct{}{}
	s.mu.Unlock()
}

func (s *Store) unsubscribe(in *inbox) {
	s.mu.Lock()
	delete(s.subs, in)
	s.mu.Unlock()
}
