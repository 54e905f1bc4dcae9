// Package backend turns the examples' command-line flags into stores: the
// one place where every example learns which backend to use and how to
// reach it.
//
//	flags := backend.Register(flag.CommandLine)
//	flag.Parse()
//	cluster, err := flags.Open(ctx) // -backend etcd with no -endpoints: an embedded etcd
//	defer cluster.Close()
//	a, err := cluster.NewReplica(ctx, "replica-a") // one "process"
//	...
//	a.Crash() // the process dies: nothing is released gracefully
//
// A Cluster is the backend as a whole (a server or a set of servers); each
// Replica is one client of it, as a separate process would have: its own
// connections, its own sessions, leases and locks. Every Replica but the
// memory ones talks to the servers through a loopback TCP proxy of its own,
// so that Crash can cut exactly that client's connections at once, as the
// server sees a process that died or was partitioned away: its locks and
// KeepAlive keys are not released but expire with their TTL (or session
// timeout), and the other replicas carry on. On the memory backend, Crash is
// memory.Store.Kill, which has the same meaning.
//
// Guarantees:
//   - Cluster and Replica are safe for concurrent use.
//   - Bad flags are a typed error (ErrInvalidFlags, matched with errors.Is)
//     saying what to pass, never a panic.
//   - Cluster.Close closes every Replica it made (waiting for their
//     goroutines and proxies) and then the embedded server or memory
//     backend it started; Close and Crash are idempotent.
//   - StopServer and StartServer exist for the embedded etcd only: the
//     server stops and restarts on the same ports and data, so clients
//     reconnect by themselves. Elsewhere they return ErrNotEmbedded.
//
// Not guaranteed: a crashed Replica's Store stays open (its calls fail with
// kv.ErrNotReachable, a timeout or a connection error, depending on the
// driver) until it is closed; closing it cannot release anything on the
// server, and may take the driver's close timeout (a few seconds on etcd)
// while it tries. The proxies carry plain TCP, so TLS runs end to end
// through them; since the address a replica dials is the proxy's, the
// server certificates are checked against -tls-server-name (default: the
// host of the first endpoint). Secrets come from files or the environment
// (-password-file, $REGENT_PASSWORD, -token-file, $CONSUL_HTTP_TOKEN),
// never from the command line, and the client certificate files are read
// again when they change.
package backend
