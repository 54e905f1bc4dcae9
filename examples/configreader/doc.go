// Command configreader serves a typed configuration object from an
// informer's cache: a read that waits for the first sync, change
// notifications, and what happens when the store goes away: the last known
// config is still served while /readyz reports the cache stale, and both
// recover when the store comes back.
//
//	go run ./examples/configreader                                  # embedded etcd, no installs
//	go run ./examples/configreader -endpoints http://127.0.0.1:2379 # your etcd (no outage step)
//	go run ./examples/configreader -backend zookeeper -endpoints 127.0.0.1:2181
//	go run ./examples/configreader -backend memory
//
// The outage step stops and restarts the server, so it runs only on the
// embedded etcd; on other backends it is skipped with a note.
package main
