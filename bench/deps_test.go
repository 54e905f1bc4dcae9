package bench

// Blank imports pin the comparison libraries in go.mod while the benchmarks
// that use them are written; each benchmark file imports what it needs.
import (
	_ "github.com/go-zookeeper/zk"
	_ "github.com/hashicorp/consul/api"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/etcd/server/v3/embed"
	_ "k8s.io/client-go/util/workqueue"

	_ "github.com/regentkv/regent/kv"
)
