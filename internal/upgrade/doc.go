// Package upgrade is kycpipe's rolling-upgrade harness: it builds the
// previous release from git and the current tree, runs both against one
// NATS JetStream cluster and one Jumio simulator, and replaces the old
// release's processes by new ones one at a time while jobs flow, the way a
// rolling deploy does. At the end it checks the soak's invariants
// (internal/soak: nothing lost, one decision per execution, no silent
// second Jumio account) and the upgrade's own.
//
// # Files
//
//   - build.go: [BuildRelease] (a commit's tree from git archive, built with
//     its own go.mod) and [BuildCurrent]; [PreviousRelease].
//   - options.go: [Options] of a run and their defaults.
//   - run.go: [Run] and the phases: the old release provisioned by its own
//     kycctl and running alone; a new process started before the new
//     topology exists; the new kycctl provisioning with the old release
//     running; replacements one by one (SIGTERM or SIGKILL of the old
//     process) with random SIGKILLs meanwhile; the new release alone.
//   - cluster.go: the in-process NATS servers (a 3-node cluster by default).
//   - fleet.go: the service processes, by slot (ingest-1, worker-2, …).
//   - balancer.go: the load balancer in front of the ingests, old and new,
//     through which submissions and Jumio's callbacks go.
//   - load.go: the jobs: API prepared data, web, API images, and new
//     executions on accounts earlier jobs created.
//   - checks.go: every stream message and job record decoded with the new
//     release's decoders; the records compared with the streams.
//   - erase.go: erasures, on the new release, of jobs from every phase.
//   - report.go: [Report], its invariants and Markdown.
//   - capture.go: [Capture], the golden corpus of one release's messages
//     and records (testdata/golden, make golden).
//
// The test that drives it is test/upgrade (make test-upgrade).
package upgrade
