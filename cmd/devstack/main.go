// Command devstack runs the whole kycpipe pipeline in one process for local
// use (`make run`): an embedded NATS server with JetStream (file store under
// --data-dir), the Jumio simulator, ingest (with the operator console at
// /console/), a worker and a retriever. It prints the console's and ingest's
// URLs, an API key (the console's sign-in too) and a ready curl command, and
// logs every decision event as it is published.
package main

import "github.com/kycpipe/kycpipe/internal/service"

func main() { service.Main("devstack", run) }
