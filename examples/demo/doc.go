// Command demo walks through regent's store contract, a fenced lock and a
// leader handover. With no flags it starts an in-process etcd server: no
// installs needed.
//
//	go run ./examples/demo                      # embedded etcd
//	go run ./examples/demo -endpoints host:2379 # your etcd
//	go run ./examples/demo -backend memory      # in-process store
package main
