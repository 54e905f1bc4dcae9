// Package election is leader election on any kv.Store (etcd, Consul,
// ZooKeeper, memory), modelled on client-go's leaderelection and built on
// package lock.
//
//	e, _ := election.New(ctx, store, election.Config{
//		Key: "jobs/nightly", Identity: hostname,
//		Callbacks: election.Callbacks{OnStartedLeading: run},
//	})
//	e.Run(ctx) // campaigns until ctx ends
//
// What it guarantees, beyond client-go:
//
//   - Fencing. The leader's ctx carries a Term (TermFrom) with a token that
//     strictly increases from term to term, and guarded writes that the
//     server rejects once the term is over. client-go gives no fencing.
//   - Watch-driven handover. Candidates wait on a server watch of the lock,
//     not on a retry period: after a graceful release (Resign, or Run's ctx
//     ending) the next candidate leads within one watch round-trip, not
//     after the next poll.
//   - Failover after a crash within the TTL (plus the backend's reaping
//     delay, see docs/backends.md): a dead leader's lock expires with its
//     TTL; the waiting candidates' watches fire at once.
//   - Stepping down in time. The leader's ctx is cancelled when the driver
//     has not been able to confirm the hold for RenewDeadline, which is
//     below the TTL: a leader cut off from its server stops before the
//     server can elect another, provided the two clocks run at the same
//     pace.
//   - One term at a time per process: Run does not lead again until the
//     previous OnStartedLeading has returned, and it releases leadership
//     only after that callback returns (or HealthTimeout passes), so a
//     cooperative leader's work never overlaps its successor's.
//   - Observe reports "no leader" (a zero Leader) as well as each new
//     leader, unlike etcd's Observe, and says why it ended when the store
//     closes (a last Observation with Err, kv.ErrClosed), where etcd's
//     closes its channel without a word.
//
// Not guaranteed: that a leader which ignores its ctx stops working. Check
// (for /healthz) fails when OnStartedLeading keeps running HealthTimeout
// after its term ended; writes it makes through its Term are rejected.
//
// The leader record lives at Key+"/leader" (JSON: identity, token, since),
// written by the leader through a guarded write with KeepAlive, so that it
// vanishes within the TTL of a leader's death. It is written as the term
// begins, beside OnStartedLeading rather than before it (a handover does
// not wait for it; fencing is the lock's token, which the Term carries):
// others see the new leader within one write of its start. A record write
// that fails ends the term, and Run backs off before campaigning again.
package election
