// Package controller is regent's reconciler runtime, after
// controller-runtime: a Controller feeds the keys of an informer into a
// work queue and reconciles them with a pool of workers; a Manager runs
// informers and controllers, gates the controllers behind leader election,
// and serves /metrics, /healthz and /readyz.
//
//	mgr, _ := controller.NewManager(controller.ManagerConfig{
//		LeaderElection: &controller.LeaderElection{Store: store,
//			Config: election.Config{Key: "controllers/apps", Identity: hostname}},
//		HealthAddr: ":8081",
//	})
//	apps, _ := controller.NewInformer(mgr, store, informer.Config[App]{Prefix: "apps", Decode: decodeApp})
//	c, _ := controller.New(controller.Config[App]{Name: "apps", Informer: apps, Reconciler: r, Workers: 4})
//	_ = mgr.Add(c)
//	err := mgr.Run(ctx) // until ctx ends or a runnable fails
//
// # Guarantees
//
//   - Level-based: a Request carries a key and the key's cached state when a
//     worker picks it up, never an event. Any number of changes of a key
//     before it is picked up make one reconcile, of the latest state; a
//     change during a reconcile makes one more, after it.
//   - Never two reconciles of one key at once, in one process; with leader
//     election, in the whole cluster as far as the election goes (see
//     package election: a leader cut off from its store stops before another
//     is elected, when clocks run at the same pace), and writes made through
//     the term in the reconcile ctx (election.TermFrom) are rejected by the
//     store once the term is over: fencing, not hope.
//   - Errors retry with per-key exponential backoff (the queue's rate
//     limiter); Terminal errors do not; Result.RequeueAfter schedules a
//     reconcile after a delay. A panic is recovered, logged with its stack,
//     counted, and retried like an error.
//   - Every term starts from the whole cache: a new leader reconciles every
//     key once, so nothing queued on the old leader is lost with it.
//   - Live changes first: that first pass and every resync are queued at
//     workqueue.LowPriority, live changes (adds, updates, deletes, the
//     keys a Watch maps them to) at the default priority, so a change made
//     during a long fill is reconciled next rather than after the whole
//     cache; a key waiting in the fill that changes is raised, not queued
//     twice. Retries and RequeueAfter requeue a key at the priority it ran
//     at.
//   - Warm standby: informers added to a Manager run on every replica, so a
//     new leader starts reconciling at once instead of after a full list.
//   - Graceful shutdown: when Run's ctx ends, the controllers stop taking
//     requests, the reconciles in flight see their ctx cancelled, and
//     leadership is released only once they have returned (or the election's
//     HealthTimeout passed), so the next leader's work never overlaps ours.
//     Run gives up after ShutdownTimeout and says which runnables hung.
//   - Probes: /readyz fails until every informer has synced, while one is
//     stale (informer.Informer.Check), while the leader's work is stuck, and
//     during shutdown; /healthz fails when the leader's work is stuck
//     (election.Elector.Check). Both list every check, Kubernetes-style.
//   - Any runnable's error stops the Manager (Run returns it): a process that
//     cannot do its job exits and is restarted, rather than limp on.
//
// # Concurrency and lifetime
//
// Every method of Controller and Manager is safe for concurrent use. A
// Controller's Run may be called again after it returned (each leadership
// term does); a Manager runs once. Neither returns channels other than
// Manager.Started, closed by Run. Reconcilers are called from the workers'
// goroutines, several at once for different keys.
//
// # Not guaranteed
//
//   - That a reconcile runs for every intermediate state of a key; reconcile
//     on what the Request says now.
//   - That work a reconciler does outside the store stops with its term: the
//     ctx says when to stop, fencing only protects writes made through the
//     Term.
//   - Ordering across keys.
//   - That a new leader sees deletes its predecessor did not finish: a key
//     deleted from the primary informer is not in the new leader's cache, so
//     it is no request by itself. Watch what the controller creates (its
//     "actual" keys), mapping each to its owner's key, as
//     examples/reconciler does: the new leader then finds the orphans
//     (controller-runtime's Owns, and the same reason for it).
package controller
