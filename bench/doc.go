// Package bench compares regent with the libraries its users know: the raw
// etcd, Consul and ZooKeeper clients, and client-go's workqueue. It is its
// own module so that regent's go.mod never depends on Kubernetes.
//
// Run: make bench (or: cd bench && go test -run '^$' -bench . -benchmem).
package bench
