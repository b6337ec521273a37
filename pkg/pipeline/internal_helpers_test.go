package pipeline

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// provisioned starts an embedded JetStream with kycpipe's topology (in
// memory) for the package's internal tests.
func provisioned(t *testing.T) (jetstream.JetStream, Topology) {
	t.Helper()
	_, _, js := pipelinetest.RunJetStream(t)
	topo := Topology{Storage: jetstream.MemoryStorage}.WithDefaults()
	if err := Provision(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	return js, topo
}
