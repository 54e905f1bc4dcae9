package kvtest

import (
	"bytes"
	"errors"

	"github.com/regentkv/regent/kv"
)

func valueCases() []testCase {
	return []testCase{
		{name: "EmptyValue", run: testEmptyValue},
		{name: "BinaryValue", run: testBinaryValue},
		{name: "NilValue", run: testNilValue},
		{name: "MaxValueSize", run: testMaxValueSize},
		{name: "ValueTooLarge", run: testValueTooLarge},
		{name: "ValuesAreCopied", run: testValuesAreCopied},
	}
}

func testEmptyValue(e *env) {
	s := e.store()
	k := e.key("empty")
	if err := s.Put(e.ctx, k, []byte{}, nil); err != nil {
		e.Fatalf("Put(empty value): %v", err)
	}
	p := e.mustGet(s, k)
	if p.Value == nil || len(p.Value) != 0 {
		e.Fatalf("Get(empty) Value = %#v, want non-nil []byte{}", p.Value)
	}
	l, err := s.List(e.ctx, e.prefix, nil)
	if err != nil || len(l) != 1 || l[0].Value == nil || len(l[0].Value) != 0 {
		e.Fatalf("List = %s, %v; want one pair with a non-nil empty value", fmtPairs(l), err)
	}
}

func testBinaryValue(e *env) {
	s := e.store()
	k := e.key("bin")
	v := make([]byte, 0, 512)
	for i := range 512 {
		v = append(v, byte(i))
	}
	if err := s.Put(e.ctx, k, v, nil); err != nil {
		e.Fatalf("Put(binary): %v", err)
	}
	if got := e.mustGet(s, k).Value; !bytes.Equal(got, v) {
		e.Fatalf("Get(binary) = %x, want %x", got, v)
	}
}

func testNilValue(e *env) {
	s := e.store()
	k := e.key("nil")
	e.wantErr("Put(nil)", s.Put(e.ctx, k, nil, nil), kv.ErrNilValue)
	_, _, err := s.AtomicPut(e.ctx, k, nil, nil, nil)
	e.wantErr("AtomicPut(nil)", err, kv.ErrNilValue)
	e.wantMissing(s, k)
}

func testMaxValueSize(e *env) {
	s := e.store()
	k := e.key("max")
	v := bytes.Repeat([]byte{0xa5}, kv.MaxValueSize)
	if err := s.Put(e.ctx, k, v, nil); err != nil {
		e.Fatalf("Put(MaxValueSize bytes): %v", err)
	}
	if got := e.mustGet(s, k).Value; !bytes.Equal(got, v) {
		e.Fatalf("Get = %d bytes, want the %d written", len(got), len(v))
	}
}

func testValueTooLarge(e *env) {
	s := e.store()
	k, old := e.key("big"), e.key("old")
	v := bytes.Repeat([]byte{1}, kv.MaxValueSize+1)
	e.wantErr("Put(MaxValueSize+1 bytes)", s.Put(e.ctx, k, v, nil), kv.ErrValueTooLarge)
	_, _, err := s.AtomicPut(e.ctx, k, v, nil, nil)
	e.wantErr("AtomicPut(MaxValueSize+1 bytes)", err, kv.ErrValueTooLarge)
	e.wantMissing(s, k)
	e.mustPut(s, old, "kept", nil)
	e.wantErr("Put over an existing key", s.Put(e.ctx, old, v, nil), kv.ErrValueTooLarge)
	e.wantValue(s, old, "kept")
	if errors.Is(err, kv.ErrNilValue) {
		e.Fatalf("too large reported as nil: %v", err)
	}
}

func testValuesAreCopied(e *env) {
	s := e.store()
	k := e.key("k")
	v := []byte("original")
	if err := s.Put(e.ctx, k, v, nil); err != nil {
		e.Fatalf("Put: %v", err)
	}
	copy(v, "XXXXXXXX") // the caller reuses its buffer
	p := e.wantValue(s, k, "original")
	copy(p.Value, "YYYYYYYY") // the caller scribbles on what it read
	e.wantValue(s, k, "original")
}
