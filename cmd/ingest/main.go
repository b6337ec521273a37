// Command ingest is kycpipe's HTTP front door: it accepts verification jobs
// (answering 202 only once JetStream stored them), reports job status, and
// receives Jumio's callbacks. Configuration: flags or environment variables
// (see --help).
package main

import "github.com/kycpipe/kycpipe/internal/service"

func main() { service.Main("ingest", run) }
