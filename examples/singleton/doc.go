// Command singleton runs a periodic job on three replicas under leader
// election: only the leader runs it, never two runs at once, and every
// write of the job is fenced with the leader's token, so that a deposed
// leader's late write is refused. Halfway the leader hands over, then the
// next leader crashes and another takes over once its lease expires.
//
//	go run ./examples/singleton                                    # embedded etcd, no installs
//	go run ./examples/singleton -endpoints http://127.0.0.1:2379   # your etcd
//	go run ./examples/singleton -backend zookeeper -endpoints 127.0.0.1:2181
//	go run ./examples/singleton -backend consul -endpoints 127.0.0.1:8500
//	go run ./examples/singleton -backend memory                    # in-process store
package main
