package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regentkv/regent/internal/testenv"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/etcd"
	"github.com/regentkv/regent/kv/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const want = `put "/demo/config/replicas" = 3, read back as "demo/config/replicas/": demo/config/replicas = 3 (one key: leading and trailing slashes are dropped)
missing key: kv.ErrKeyNotFound
compare-and-swap 3 -> 4 by a writer that read 3: ok
compare-and-swap 3 -> 5 by another writer that also read 3: refused with kv.ErrKeyModified: true
watch demo/flag: absent
watch demo/flag: on
watch demo/flag: absent
TTL key demo/session (TTL 2s) is gone by itself after its TTL: true
lock tokens increase: true
guarded write after unlock refused: true
replica-a leads
replica-b leads after the handover (took less than a second: true)
`

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Run("memory", func(t *testing.T) {
		b := memory.NewBackend()
		defer b.Close()
		var out bytes.Buffer
		if err := demo(ctx, &out, func() (kv.Store, error) { return b.Client(), nil }); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("demo printed:\n%s\nwant:\n%s", out.String(), want)
		}
	})
	t.Run("etcd", func(t *testing.T) {
		eps := testenv.Etcd(t)
		var out bytes.Buffer
		err := demo(ctx, &out, func() (kv.Store, error) { return etcd.New(ctx, etcd.Config{Endpoints: eps}) })
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("demo printed:\n%s\nwant:\n%s", out.String(), want)
		}
	})
}
