// Command discovery runs three gRPC server instances that register
// themselves with package discovery, and a client that calls the service
// through the "regent:///" resolver with round_robin. One instance is then
// killed without deregistering (its store connection cut, its gRPC server
// left running, as a process that lost the store would be), and the
// timeline shows the client moving off it once its record expires, within
// the TTL.
//
//	go run ./examples/discovery                                    # embedded etcd, no installs
//	go run ./examples/discovery -endpoints http://127.0.0.1:2379   # your etcd
//	go run ./examples/discovery -backend zookeeper -endpoints 127.0.0.1:2181
//	go run ./examples/discovery -backend consul -endpoints 127.0.0.1:8500
//	go run ./examples/discovery -backend memory                    # in-process store
package main
