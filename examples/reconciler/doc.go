// Command reconciler runs a leader-elected controller on three replicas:
// desired state is written under apps/desired, and whichever replica leads
// converges apps/actual to it, with writes fenced by its term. Halfway the
// leader crashes; the timeline shows who leads, what each reconcile did and
// how long the failover took.
//
//	go run ./examples/reconciler                                    # embedded etcd, no installs
//	go run ./examples/reconciler -endpoints http://127.0.0.1:2379   # your etcd
//	go run ./examples/reconciler -backend zookeeper -endpoints 127.0.0.1:2181
//	go run ./examples/reconciler -backend consul -endpoints 127.0.0.1:8500
//	go run ./examples/reconciler -backend memory                    # in-process store
//
// A secured cluster, with the credentials an operator granted the
// application (docs/security.md):
//
//	ETCD_PW=/run/secrets/etcd-password
//	go run ./examples/reconciler -endpoints https://etcd-1:2379 -root app \
//	    -tls-ca ca.pem -tls-cert client.pem -tls-key client-key.pem \
//	    -user app -password-file $ETCD_PW
//
// (Consul: -token-file; ZooKeeper: -user and -password-file are its digest
// identity.) Every example but demo takes the same flags; see
// examples/internal/backend.
package main
