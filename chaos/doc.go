// Package chaos is regent's fault-injection suite, run by `make chaos` (and
// by CI): real servers as separate OS processes that the tests SIGKILL,
// SIGSTOP/SIGCONT, SIGTERM and restart while regent clients work against
// them, and checkers that judge the outcome from what the servers accepted
// and what every process recorded.
//
// Its tests carry the build tag "chaos", so `go test ./...` leaves them
// out: `go test -tags chaos ./chaos/` runs them. Every scenario is driven
// by a seed (printed at its start and on failure; -chaos.seed=N replays
// the same fault schedule and operation mix, -chaos.seeds=K runs K seeds
// in a row) and prints a timeline of what happened when it fails.
//
// Scenarios, on etcd, ZooKeeper and Consul:
//
//   - linearizability: concurrent clients doing Get (Consistent), Put,
//     create-only AtomicPut, compare-and-swap, AtomicDelete and Delete on
//     a few keys, with and without server restarts, checked with porcupine
//     (github.com/anishathalye/porcupine). A write whose outcome the
//     client could not know (kv.ErrOutcomeUnknown, or any error that is
//     not a definite refusal) may or may not have happened, at any time
//     after it was sent.
//   - election safety: 3 to 5 candidate processes (this test binary,
//     re-executed) elect a leader that makes fenced writes while leaders
//     are SIGKILLed, SIGSTOPped past the TTL and resumed, SIGTERMed,
//     followers are killed and the server is killed and restarted. The
//     checks: guarded writes accepted in token order, in the store's own
//     order (revision, zxid, raft index); no write acknowledged as
//     accepted missing, none refused or failed unsent present; the leader record never
//     going back to an older term; no overlap between the terms of
//     processes that were not paused, a term lasting from the callback's
//     start to the moment its ctx ends (a write in flight then may still
//     be accepted: that is what the token fences); a leader again within a bound once
//     the faults stop; every process exiting cleanly at the end.
//   - informer convergence: random writes while the server is restarted
//     (and, on etcd, compacted); at the end the cache equals a List and
//     every handler saw every key's final state.
//   - workqueue soak: 10^6 operations from many goroutines, with delays
//     and rate limits: no item lost, none processed by two workers at
//     once, the drain completes.
package chaos
