// Command devstack runs the whole kycpipe pipeline in one process for local
// use (`make run`): an embedded NATS server with JetStream (file store under
// --data-dir), the Jumio simulator, ingest, a worker and a retriever. It
// prints the ingest URL, an API key and a ready curl command, and logs every
// decision event as it is published.
package main

import "github.com/kycpipe/kycpipe/internal/service"

func main() { service.Main("devstack", run) }
