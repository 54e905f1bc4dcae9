package consul_test

import (
	"context"
	"errors"
	"fmt"

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
