package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
)

// ClusterNodes is the size of the cluster step's JetStream cluster.
const ClusterNodes = 3

// cluster runs the end-to-end measurement on a JetStream cluster of
// ClusterNodes nats-server processes with every stream and bucket
// replicated on all of them (KYCPIPE_STREAM_REPLICAS=3), as production
// runs: the CPU each node spends per job is what docs/BENCHMARKS.md's
// capacity model sizes NATS nodes with. Every process still shares the
// machine's cores, so its jobs/s say little; its CPU per job is the figure.
func (b *runner) cluster(ctx context.Context) error {
	b.n++
	s, err := NewClusterStack(ctx, b.binDir, filepath.Join(b.o.WorkDir, fmt.Sprintf("%d-cluster", b.n)), b.o.NATSEnv, ClusterNodes)
	if err != nil {
		return err
	}
	defer s.Close()
	e, _, err := b.e2eOn(ctx, s, "cluster", "", false, []string{fmt.Sprintf("KYCPIPE_STREAM_REPLICAS=%d", ClusterNodes)}, b.o.ClusterJobs)
	if err != nil {
		return err
	}
	b.r.Cluster = e
	return nil
}

// clusterMarkdown is the cluster step's section of the report.
func (r *Results) clusterMarkdown(p func(string, ...any)) {
	c := r.Cluster
	if c.Jobs == 0 {
		return
	}
	nodes := c.natsProcs()
	one := func(names ...string) string { // the same processes in step 4
		if r.E2E.Jobs == 0 {
			return "not run"
		}
		return ms(r.E2E.CPUPerJob(names...))
	}
	p("\n### 4b. End to end on a %d-node JetStream cluster (streams and buckets replicated %d times)\n\n", len(nodes), len(nodes))
	p("The same job and concurrency as step 4, %d jobs, the stages connected to every node; every node is a process on the same 2 cores, ", c.Jobs)
	p("so jobs/s (%.0f) is bound by the machine, not by the cluster; the CPU each node spends per job is the figure (the capacity model in docs/BENCHMARKS.md sizes NATS nodes with it). ", c.Rate())
	p("Submit-to-decision p50 / p99: %s / %s ms.\n\n", ms(c.Lat.P(0.5)), ms(c.Lat.P(0.99)))
	p("| process | CPU ms per job | on one node (step 4) | peak RSS |\n| --- | --- | --- | --- |\n")
	for _, n := range append(slices.Clone(pipelineStages), "jumiosim") {
		p("| %s | %s | %s | %s MiB |\n", n, ms(c.CPUPerJob(n)), one(n), mib(c.Peak[n]))
	}
	for _, n := range nodes {
		p("| %s | %s | | %s MiB |\n", n, ms(c.CPUPerJob(n)), mib(c.Peak[n]))
	}
	p("| **nats-server, all nodes** | **%s** | %s | |\n", ms(c.CPUPerJob(nodes...)), one(r.E2E.natsProcs()...))
	p("| pipeline (ingest + worker + retriever) | %s | %s | |\n", ms(c.CPUPerJob(pipelineStages...)), one(pipelineStages...))
}
