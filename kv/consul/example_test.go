package consul_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/regentkv/regent/kv/consul"
)

// Configuration errors are reported before any connection is made.
func ExampleNew_invalidConfig() {
	_, err := consul.New(context.Background(), consul.Config{
		Addresses: []string{"https://10.0.0.1:8501", "http://10.0.0.2:8500"},
	})
	fmt.Println(errors.Is(err, consul.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// consul: invalid config: addresses mix http and https
}

// Consul expires a session twice its TTL after the last renewal, so the
// Store gives every session half the TTL asked: the smallest TTL it
// accepts is twice the servers' session_ttl_min.
func ExampleStore_MinTTL() {
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, min := range []time.Duration{0, time.Second} {
		s, err := consul.NewFromClient(client, consul.Config{SessionTTLMin: min})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(s.MinTTL())
		_ = s.Close()
	}
	// Output:
	// 20s
	// 2s
}
