// Command notifier delivers kycpipe's events to registered webhook
// endpoints as signed HTTP POSTs (Standard Webhooks, DESIGN 3.8): it fans
// every lifecycle event and decision out to the endpoints subscribed to its
// type and makes each delivery with retries on a schedule, then
// dead-letters it. Run as many as you like: they are stateless.
// Configuration: flags or environment variables (see --help).
package main

import "github.com/kycpipe/kycpipe/internal/service"

func main() { service.Main("notifier", run) }
