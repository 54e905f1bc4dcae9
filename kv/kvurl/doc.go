// Package kvurl opens a kv.Store from a URL, so that a tool, an example
// or a user's flag can name any backend in one string:
//
//	etcd://host:2379,host2:2379/apps/regent
//	etcd://user:password@host:2379
//	consul://host:8500/apps/regent?dc=east
//	consul://token@host:8500
//	zookeeper://host:2181,host2:2181/regent
//	zookeeper://user:password@host:2181     (digest auth)
//	memory:                                 (a store of its own, in process)
//
// The path is the Store's Root (each driver's default when empty). The
// query may set tls=true, cacert, cert, key and insecure-skip-verify (TLS
// to the servers), dial-timeout, request-timeout, and dc, namespace,
// partition on Consul; an unknown parameter is an error, never ignored.
// Options fill in what the URL leaves out (a tool's flags and environment
// variables): the URL's own parts win.
//
// The package imports the four drivers explicitly and registers nothing
// at init: linking it links them all, and a program that wants one
// backend imports that driver alone instead.
package kvurl
