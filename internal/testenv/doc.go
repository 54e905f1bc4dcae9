// Package testenv starts the real servers that regent's tests run against:
// an in-process etcd, a ZooKeeper and a Consul agent, each on free loopback
// ports with its own temporary data directory, stopped by t.Cleanup.
//
// When a server cannot be found, a test skips with a message saying how to
// get it, except in CI (CI=true), where a missing server fails the test:
// CI must never pass by skipping a backend.
package testenv
