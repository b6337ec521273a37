// Command worker runs kycpipe's Jumio saga for submitted jobs: it pulls
// jobs from JetStream, creates or updates the Jumio account, uploads prepared
// data and images, and finalizes (API channel) or announces the web link or
// SDK token (WEB and SDK channels). Run as many as you like: they are
// stateless. Configuration: flags or environment variables (see --help).
package main

import "github.com/kycpipe/kycpipe/internal/service"

func main() { service.Main("worker", run) }
