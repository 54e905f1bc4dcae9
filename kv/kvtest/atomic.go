package kvtest

import (
	"errors"
	"strconv"
	"sync"

	"github.com/regentkv/regent/kv"
)

func atomicCases() []testCase {
	return []testCase{
		{name: "AtomicPutCreate", run: testAtomicPutCreate},
		{name: "AtomicPutCreateExisting", run: testAtomicPutCreateExisting},
		{name: "AtomicPutUpdate", run: testAtomicPutUpdate},
		{name: "AtomicPutStale", run: testAtomicPutStale},
		{name: "AtomicPutMissing", run: testAtomicPutMissing},
		{name: "AtomicPutChain", run: testAtomicPutChain},
		{name: "AtomicDelete", run: testAtomicDelete},
		{name: "AtomicDeleteStale", run: testAtomicDeleteStale},
		{name: "AtomicDeleteMissing", run: testAtomicDeleteMissing},
		{name: "AtomicDeleteNilPrevious", run: testAtomicDeleteNilPrevious},
		{name: "AtomicPutConcurrentIncrements", run: testAtomicIncrements},
	}
}

func testAtomicPutCreate(e *env) {
	s := e.store()
	k := e.key("k")
	ok, p, err := s.AtomicPut(e.ctx, k, []byte("v"), nil, nil)
	if err != nil || !ok || p == nil {
		e.Fatalf("AtomicPut(create) = %t, %+v, %v; want true, pair, nil", ok, p, err)
	}
	if p.Key != k || string(p.Value) != "v" {
		e.Fatalf("AtomicPut returned {%q, %q}, want {%q, %q}", p.Key, p.Value, k, "v")
	}
	if g := e.wantValue(s, k, "v"); g.LastIndex != p.LastIndex {
		e.Fatalf("Get LastIndex = %d, AtomicPut returned %d", g.LastIndex, p.LastIndex)
	}
}

func testAtomicPutCreateExisting(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "first", nil)
	ok, p, err := s.AtomicPut(e.ctx, k, []byte("second"), nil, nil)
	e.wantErr("AtomicPut(create) over an existing key", err, kv.ErrKeyExists)
	if ok || p != nil {
		e.Fatalf("failed AtomicPut returned %t, %+v; want false, nil", ok, p)
	}
	e.wantValue(s, k, "first")
}

func testAtomicPutUpdate(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v1", nil)
	prev := e.mustGet(s, k)
	ok, p, err := s.AtomicPut(e.ctx, k, []byte("v2"), prev, nil)
	if err != nil || !ok {
		e.Fatalf("AtomicPut(update) = %t, %v; want true, nil", ok, err)
	}
	if p.LastIndex == prev.LastIndex || string(p.Value) != "v2" {
		e.Fatalf("AtomicPut returned {%q, %d}, want value v2 and a LastIndex other than %d", p.Value, p.LastIndex, prev.LastIndex)
	}
	e.wantValue(s, k, "v2")
}

func testAtomicPutStale(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v1", nil)
	stale := e.mustGet(s, k)
	e.mustPut(s, k, "v2", nil)
	ok, _, err := s.AtomicPut(e.ctx, k, []byte("v3"), stale, nil)
	e.wantErr("AtomicPut with a stale previous", err, kv.ErrKeyModified)
	if ok {
		e.Fatalf("failed AtomicPut returned true")
	}
	e.wantValue(s, k, "v2")
}

func testAtomicPutMissing(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v1", nil)
	prev := e.mustGet(s, k)
	if err := s.Delete(e.ctx, k); err != nil {
		e.Fatalf("Delete: %v", err)
	}
	_, _, err := s.AtomicPut(e.ctx, k, []byte("v2"), prev, nil)
	e.wantErr("AtomicPut on a deleted key", err, kv.ErrKeyNotFound)
	e.wantMissing(s, k)
}

func testAtomicPutChain(e *env) {
	s := e.store()
	k := e.key("k")
	_, p, err := s.AtomicPut(e.ctx, k, []byte("0"), nil, nil)
	if err != nil {
		e.Fatalf("AtomicPut(create): %v", err)
	}
	first := p
	for i := 1; i <= 5; i++ {
		v := strconv.Itoa(i)
		ok, np, err := s.AtomicPut(e.ctx, k, []byte(v), p, nil)
		if err != nil || !ok || np == nil {
			e.Fatalf("AtomicPut #%d with the pair returned by the previous one = %t, %+v, %v", i, ok, np, err)
		}
		p = np
	}
	e.wantValue(s, k, "5")
	_, _, err = s.AtomicPut(e.ctx, k, []byte("x"), first, nil)
	e.wantErr("AtomicPut with the first pair", err, kv.ErrKeyModified)
	ok, err := s.AtomicDelete(e.ctx, k, p)
	if err != nil || !ok {
		e.Fatalf("AtomicDelete with the last returned pair = %t, %v", ok, err)
	}
}

func testAtomicDelete(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v", nil)
	ok, err := s.AtomicDelete(e.ctx, k, e.mustGet(s, k))
	if err != nil || !ok {
		e.Fatalf("AtomicDelete = %t, %v; want true, nil", ok, err)
	}
	e.wantMissing(s, k)
}

func testAtomicDeleteStale(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v1", nil)
	stale := e.mustGet(s, k)
	e.mustPut(s, k, "v2", nil)
	ok, err := s.AtomicDelete(e.ctx, k, stale)
	e.wantErr("AtomicDelete with a stale previous", err, kv.ErrKeyModified)
	if errors.Is(err, kv.ErrKeyNotFound) || ok {
		e.Fatalf("AtomicDelete(stale) = %t, %v; must not claim the key is missing", ok, err)
	}
	e.wantValue(s, k, "v2")
}

func testAtomicDeleteMissing(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v", nil)
	prev := e.mustGet(s, k)
	if err := s.Delete(e.ctx, k); err != nil {
		e.Fatalf("Delete: %v", err)
	}
	ok, err := s.AtomicDelete(e.ctx, k, prev)
	e.wantErr("AtomicDelete on a deleted key", err, kv.ErrKeyNotFound)
	if ok {
		e.Fatalf("failed AtomicDelete returned true")
	}
}

func testAtomicDeleteNilPrevious(e *env) {
	s := e.store()
	k := e.key("k")
	e.mustPut(s, k, "v", nil)
	ok, err := s.AtomicDelete(e.ctx, k, nil)
	e.wantErr("AtomicDelete(nil previous)", err, kv.ErrPreviousNotSpecified)
	if ok {
		e.Fatalf("failed AtomicDelete returned true")
	}
	e.wantValue(s, k, "v")
}

// testAtomicIncrements runs read-modify-write loops from several clients
// and goroutines: with a correct CAS no increment is lost.
func testAtomicIncrements(e *env) {
	const clients, workers, incs = 3, 2, 10
	k := e.key("counter")
	if _, _, err := e.store().AtomicPut(e.ctx, k, []byte("0"), nil, nil); err != nil {
		e.Fatalf("AtomicPut(create): %v", err)
	}
	errs := make(chan error, clients*workers)
	var wg sync.WaitGroup
	for range clients {
		s := e.store()
		for range workers {
			wg.Go(func() {
				for done := 0; done < incs; {
					p, err := s.Get(e.ctx, k, nil)
					if err != nil {
						errs <- err
						return
					}
					n, err := strconv.Atoi(string(p.Value))
					if err != nil {
						errs <- err
						return
					}
					_, _, err = s.AtomicPut(e.ctx, k, []byte(strconv.Itoa(n+1)), p, nil)
					switch {
					case err == nil:
						done++
					case !errors.Is(err, kv.ErrKeyModified):
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.Errorf("increment: %v", err)
	}
	e.wantValue(e.store(), k, strconv.Itoa(clients*workers*incs))
}
