// Package discovery is service registration and endpoint watching on any
// kv.Store (etcd, Consul, ZooKeeper, memory), with a gRPC name resolver.
//
// A process registers each of its endpoints:
//
//	reg, err := discovery.Register(ctx, store, "payments",
//		discovery.Instance{ID: hostname, Address: "10.0.0.7:8443", Metadata: map[string]string{"zone": "eu-1"}},
//		&discovery.RegisterOptions{TTL: 10 * time.Second, Health: ready})
//	defer reg.Deregister(context.Background())
//
// Clients follow a service with a Watcher (an informer on the service's
// directory) or dial it through gRPC:
//
//	cc, err := grpc.NewClient("regent:///payments",
//		grpc.WithResolvers(discovery.NewResolverBuilder(store, nil)),
//		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin":{}}]}`), ...)
//
// # Layout
//
// One record per instance, at "<prefix>/<service>/<instance ID>" (prefix
// DefaultPrefix unless set), whose value is the Instance as JSON. Other
// tools can read and write the same records.
//
// # Guarantees
//
//   - A registered record is a KeepAlive write: it lives while the
//     registering Store is open and reachable, is gone within its TTL
//     (plus the backend's reaping delay, measured in the tests: about 0
//     to 0.2 s) after the process dies or loses the store, and is restored
//     by the store itself after it lost and regained its session or lease.
//     Deregister deletes it at once and nothing of the Registration
//     writes again; a health-loop write in flight is waited for, never
//     cancelled (a cancelled write can still land after the delete). A
//     Deregister whose delete failed can be called again.
//   - The health loop (run only with a Health check or Metrics) ends with
//     Deregister or when the store is closed (a watch of the record tells
//     it, as a healthy instance writes nothing).
//   - With a Health check, the record is withdrawn only after
//     FailureThreshold failed checks in a row and published again only
//     after SuccessThreshold passed checks in a row: one blip does not make
//     the instance flap.
//   - A Watcher's Instances are the records of the service (matching
//     WatchOptions.Match), sorted by ID, as current as the informer's
//     cache; OnChange hears of every change of that set, once synced, and
//     never of a change outside Match. Unreadable records (bad JSON, an ID
//     that does not match its key, no address) are skipped and logged.
//   - The gRPC resolver hands over every change at once, including an
//     empty set (so that balancers drop instances that are gone, rather
//     than keep them as they do on a resolver error).
//   - Bad names, addresses and options fail with ErrInvalidInstance; a TTL
//     the backend cannot honour with its *kv.TTLError, from Register
//     itself (kv.OptionsChecker), also when the first health check fails
//     and nothing is written yet.
//
// # Not guaranteed
//
//   - An instance that is alive but cut off from the store disappears
//     from the service once its record expires, although it may still
//     serve clients that already have a connection: the record says who
//     is reachable through the store, not who is up.
//   - Two processes registering the same ID overwrite each other's record:
//     IDs must be unique per service.
//   - A Registration with a Health check or Metrics costs a goroutine and
//     a watch of its record on the store (on Consul one blocking query)
//     until Deregister or the store's Close; one that gets neither lives
//     as long as the process. Without either it costs nothing but the
//     store's KeepAlive key: no goroutine, no watch.
//   - The instances gauge of a Watcher is per service: two Watchers of one
//     service on one Metrics overwrite each other's figure.
package discovery
