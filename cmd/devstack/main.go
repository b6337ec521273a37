// Command devstack runs the whole kycpipe pipeline in one process for local
// use (`make run`): an embedded NATS server with JetStream (file store under
// --data-dir), the Jumio simulator, ingest (with the operator console at
// /console/), a worker, a retriever, a notifier and the example webhook
// receiver (registered for every event type). It prints the console's and
// ingest's URLs, an API key (the console's sign-in too) and a ready curl
// command, and logs every decision event as it is published and every
// signed webhook delivery the receiver verifies.
package main

import "github.com/kycpipe/kycpipe/internal/service"

func main() { service.Main("devstack", run) }
