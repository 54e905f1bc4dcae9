// Package embedded runs an etcd v3 server inside the current process: the
// zero-install backend that examples and tests use when no etcd endpoint is
// given.
//
//	srv, err := embedded.Start(ctx)
//	if err != nil { ... }
//	defer srv.Close()
//	store, err := etcd.New(ctx, etcd.Config{Endpoints: srv.Endpoints()})
//
// The server is a single member listening on free 127.0.0.1 ports, with its
// data in a fresh temporary directory (removed by Close) unless WithDataDir
// names one (kept by Close, so that a later Start can reopen it). Its logs go
// to a nop logger unless WithLogger says otherwise.
//
// Guarantees:
//   - Start returns only once the server serves clients, or an error; it
//     honours ctx and leaves nothing running when it fails.
//   - Stop and Restart keep the data directory and the ports, so clients
//     that were connected reconnect by themselves after Restart.
//   - Close stops the server and waits for it; it is idempotent. A Server is
//     safe for concurrent use.
//
// Not guaranteed: ports are picked free a moment before the server binds
// them, so another process may grab one in between; Start then retries with
// new ports a few times (Restart cannot, and reports the bind error).
//
// Close leaves no goroutine behind: this package's tests run
// goleak.VerifyTestMain with no ignore list.
package embedded
