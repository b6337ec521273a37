// Command kycctl is kycpipe's operator command line: submit, status, watch,
// jobs, dlq list|show|replay, provision and doctor. Run `kycctl help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kycpipe/kycpipe/internal/kycctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cli := &kycctl.CLI{Out: os.Stdout, Err: os.Stderr, In: os.Stdin, Getenv: os.Getenv}
	err := cli.Run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kycctl:", err)
		os.Exit(1)
	}
}
