// Package chaosnet is kycpipe's network-partition harness: a 3-node NATS
// JetStream cluster (R3) with each node in its own Linux network namespace,
// the Jumio simulator, ingest, workers and retrievers in namespaces of
// their own, all on one bridge, and faults made of iptables rules inside
// the namespaces, while jobs are submitted at a steady rate.
//
// The faults (faults.go): one node isolated from the other two; the meta
// leader, which also leads the jobs stream, isolated; a one-way partition (a
// follower stops hearing the leader); a worker cut off from NATS while its
// Jumio calls are in flight; the node the ingest is connected to isolated
// while submissions continue; and, in the long run, short 5 s partitions.
// Each is healed after 3–60 s, and the cluster must report healthy again.
// Node n3 runs in a time namespace whose monotonic and boot-time clocks are
// ten days ahead: Linux has no per-namespace wall clock, so a wall-clock
// skew of one node cannot be simulated this way.
//
// Every run also has two notifiers delivering to the example webhook
// receiver (which fails a tenth of the attempts) and erases 5% of the jobs.
// With Options.Soak (cmd/chaosnet --soak 60m, make soak-net) the fault list
// gives way to the soak schedule (soak.go): SIGKILLs of workers, retrievers
// and notifiers, and in turn a node loss (a nats-server SIGKILLed and
// restarted on its store) or one of the partitions above, with Jumio faults.
//
// At the end the soak's invariants are checked (soak.Verify: nothing
// accepted is lost, one Jumio execution per job, one decision per
// execution, erasures complete and leaving no trace, webhooks delivered
// once per event and endpoint, ...) plus the client's view: every answer is
// a 2xx or a 503 with Retry-After, none comes after the client's timeout,
// and every submission is eventually accepted when retried with its
// Idempotency-Key.
//
// It needs root, iproute2 and iptables: `make test-net` runs the short
// version (TestShortChaosNet, build tag chaosnet), `make chaos-net` the long
// one (cmd/chaosnet). TestDiskFull (same tag, `make test-disk`) fills a
// small tmpfs under the NATS store.
//
// Files: lab.go (namespaces, bridge, iptables), nodes.go (nats-server
// processes), harness.go (setup, the run, teardown), faults.go, soak.go
// (the soak schedule), load.go (the submitting client), report.go,
// options.go, build.go.
package chaosnet
