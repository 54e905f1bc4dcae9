package informer

import (
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"sort"
	"strconv"

	"github.com/regentkv/regent/kv"
)

// entry is one cached version of a key. Entries are immutable once cached:
// a change replaces the pointer, so a handler that fell behind can keep the
// version it last saw by holding the pointer, and comparing pointers tells
// whether a key changed.
type entry[T any] struct {
	obj T
	rev uint64 // KVPair.Revision of this version
	// sum is a hash of the stored value: a re-list after a backend index
	// reset can show the same revision with another value, and the hash
	// tells them apart without keeping the bytes.
	sum uint64
	idx [][]string // values per index, in cache.names order; nil without indexers
}

var valueSeed = maphash.MakeSeed()

func valueSum(v []byte) uint64 { return maphash.Bytes(valueSeed, v) }

// cache is the informer's store of objects and their indexes. It is not
// safe for concurrent use on its own: the Informer guards it with its mutex.
type cache[T any] struct {
	items   map[string]*entry[T]
	names   []string // sorted index names
	funcs   []IndexFunc[T]
	indices []map[string]map[string]struct{} // per index: value -> keys
}

func newCache[T any](indexers map[string]IndexFunc[T]) cache[T] {
	c := cache[T]{items: make(map[string]*entry[T])}
	c.names = slices.Sorted(maps.Keys(indexers))
	for _, n := range c.names {
		c.funcs = append(c.funcs, indexers[n])
		c.indices = append(c.indices, make(map[string]map[string]struct{}))
	}
	return c
}

// index computes e's index values; errors are returned for reporting and
// leave the object out of that index.
func (c *cache[T]) index(key string, e *entry[T]) []error {
	if len(c.funcs) == 0 {
		return nil
	}
	var errs []error
	e.idx = make([][]string, len(c.funcs))
	for i, f := range c.funcs {
		vals, err := f(key, e.obj)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: index %q: %w", ErrIndex, c.names[i], err))
			continue
		}
		e.idx[i] = vals
	}
	return errs
}

// set replaces key's entry (nil deletes it) and its index entries.
func (c *cache[T]) set(key string, e *entry[T]) {
	if old := c.items[key]; old != nil {
		for i, vals := range old.idx {
			for _, v := range vals {
				keys := c.indices[i][v]
				delete(keys, key)
				if len(keys) == 0 {
					delete(c.indices[i], v)
				}
			}
		}
	}
	if e == nil {
		delete(c.items, key)
		return
	}
	c.items[key] = e
	for i, vals := range e.idx {
		for _, v := range vals {
			keys := c.indices[i][v]
			if keys == nil {
				keys = make(map[string]struct{})
				c.indices[i][v] = keys
			}
			keys[key] = struct{}{}
		}
	}
}

func (c *cache[T]) indexNum(name string) (int, error) {
	i := sort.SearchStrings(c.names, name)
	if i == len(c.names) || c.names[i] != name {
		return 0, fmt.Errorf("%w: %q", ErrUnknownIndex, name)
	}
	return i, nil
}

// Lister reads an informer's cache. Its methods are safe for concurrent use
// and never touch the server. Objects are shared with the cache and with
// handlers: treat them as read-only.
type Lister[T any] interface {
	// Get returns the cached object at key (a normalised key, as in
	// kv.KVPair.Key).
	Get(key string) (T, bool)
	// List returns every cached object, in key order.
	List() []T
	// Keys returns every cached key, sorted.
	Keys() []string
	// ByIndex returns the objects whose index value includes value, in key
	// order.
	ByIndex(index, value string) ([]T, error)
	// IndexKeys is ByIndex returning keys.
	IndexKeys(index, value string) ([]string, error)
}

// Get returns the cached object at key, which is normalised as the store
// does ("/a/b/" is "a/b"; an invalid key is absent). It answers from the
// cache as it is: before the first sync every key is absent. Lookup tells
// "not synced yet" from "absent"; HasSynced says the same for a series of
// reads.
func (inf *Informer[T]) Get(key string) (T, bool) {
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	return inf.getLocked(key)
}

// Lookup is Get that fails with an error wrapping ErrNotSynced (and saying
// why, as WaitForCacheSync does) while the cache has not synced, so that
// "absent" is only ever said of a synced cache.
func (inf *Informer[T]) Lookup(key string) (T, bool, error) {
	inf.mu.RLock()
	synced := inf.synced
	obj, ok := inf.getLocked(key)
	inf.mu.RUnlock()
	if !synced {
		var zero T
		return zero, false, inf.whyNot(errors.New("Lookup before the first sync"), "lookup of "+strconv.Quote(key))
	}
	return obj, ok, nil
}

func (inf *Informer[T]) getLocked(key string) (T, bool) {
	e := inf.c.items[key]
	if e == nil {
		if k, err := kv.NormalizeKey(key); err == nil && k != key {
			e = inf.c.items[k]
		}
	}
	if e == nil {
		var zero T
		return zero, false
	}
	return e.obj, true
}

// Keys returns every cached key, sorted.
func (inf *Informer[T]) Keys() []string {
	inf.mu.RLock()
	keys := slices.Collect(maps.Keys(inf.c.items))
	inf.mu.RUnlock()
	slices.Sort(keys)
	return keys
}

// List returns every cached object, in key order.
func (inf *Informer[T]) List() []T {
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	keys := slices.Sorted(maps.Keys(inf.c.items))
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = inf.c.items[k].obj
	}
	return out
}

// Len returns the number of cached objects.
func (inf *Informer[T]) Len() int {
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	return len(inf.c.items)
}

// IndexKeys returns the keys whose index value includes value, sorted.
func (inf *Informer[T]) IndexKeys(index, value string) ([]string, error) {
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	i, err := inf.c.indexNum(index)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(inf.c.indices[i][value])), nil
}

// ByIndex returns the objects whose index value includes value, in key order.
func (inf *Informer[T]) ByIndex(index, value string) ([]T, error) {
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	i, err := inf.c.indexNum(index)
	if err != nil {
		return nil, err
	}
	keys := slices.Sorted(maps.Keys(inf.c.indices[i][value]))
	out := make([]T, len(keys))
	for j, k := range keys {
		out[j] = inf.c.items[k].obj
	}
	return out, nil
}

// Lister returns a read-only view of the cache, for code that must not
// register handlers or run the informer.
func (inf *Informer[T]) Lister() Lister[T] { return lister[T]{inf} }

type lister[T any] struct{ inf *Informer[T] }

func (l lister[T]) Get(key string) (T, bool)         { return l.inf.Get(key) }
func (l lister[T]) List() []T                        { return l.inf.List() }
func (l lister[T]) Keys() []string                   { return l.inf.Keys() }
func (l lister[T]) ByIndex(i, v string) ([]T, error) { return l.inf.ByIndex(i, v) }
func (l lister[T]) IndexKeys(i, v string) ([]string, error) {
	return l.inf.IndexKeys(i, v)
}
