package embedded_test

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regentkv/regent/kv/etcd/embedded"
)

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv, err := embedded.Start(ctx)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer func() { _ = srv.Close() }()

	c, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Println("client:", err)
		return
	}
	defer func() { _ = c.Close() }()

	if _, err := c.Put(ctx, "greeting", "hello"); err != nil {
		fmt.Println("put:", err)
		return
	}
	resp, err := c.Get(ctx, "greeting")
	if err != nil {
		fmt.Println("get:", err)
		return
	}
	fmt.Printf("%s\n", resp.Kvs[0].Value)
	// Output: hello
}
