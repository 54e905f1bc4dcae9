package kvurl_test

import (
	"context"
	"fmt"

	"github.com/regentkv/regent/kv/kvurl"
)

func ExampleOpen() {
	ctx := context.Background()
	// etcd://host:2379/root, consul://host:8500, zookeeper://host:2181 alike.
	s, err := kvurl.Open(ctx, "memory:", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = s.Close() }()
	_ = s.Put(ctx, "config/greeting", []byte("hello"), nil)
	p, _ := s.Get(ctx, "config/greeting", nil)
	fmt.Printf("%s = %s\n", p.Key, p.Value)
	// Output: config/greeting = hello
}

func ExampleRedacted() {
	fmt.Println(kvurl.Redacted("etcd://root:secret@127.0.0.1:2379/apps"))
	// Output: etcd://root:***@127.0.0.1:2379/apps
}
