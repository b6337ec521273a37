// Command retriever turns Jumio callbacks and its own poll tasks into one
// normalized decision event per workflow execution. It polls Jumio's
// retrieval API on Jumio's recommended schedule until the workflow ends, so
// a lost callback still ends in a decision. Configuration: flags or
// environment variables (see --help).
package main

import "github.com/kycpipe/kycpipe/internal/service"

func main() { service.Main("retriever", run) }
