package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/kycpipe/kycpipe/internal/console"
	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// DevAPIKey is the API key devstack accepts unless told otherwise. It only
// ever guards a loopback listener.
const DevAPIKey = "kycpipe-local-dev-key"

func run(ctx context.Context, args []string, getenv func(string) string) error {
	st, set := newSettings(getenv)
	if err := set.Parse(args); err != nil {
		return err
	}
	common := service.Common{LogFormat: "console", LogLevel: st.logLevel}
	log, err := common.Logger("devstack")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if err := os.MkdirAll(st.dataDir, 0o700); err != nil {
		return err
	}
	abs, _ := filepath.Abs(st.dataDir)
	stack, err := localstack.Start(ctx, localstack.Options{
		DataDir: abs, NATSPort: st.natsPort, HTTPAddr: st.httpAddr, APIKeys: []string{st.apiKey}, Sim: st.simOptions(),
		Workers: 1, Retrievers: 1, Retriever: pipeline.RetrieverConfig{Schedule: st.sched},
		// The example receiver listens on loopback over http: the local
		// stack's webhook policy allows both (production's refuses them).
		Notifiers: 1, WebhookReceiver: true, Console: &console.Config{},
		Ingest:   pipeline.IngestConfig{Webhooks: devWebhooks},
		Notifier: pipeline.NotifierConfig{Webhooks: devWebhooks},
		Logger:   log, Registry: service.NewRegistry(),
	})
	if err != nil {
		return err
	}
	if err := logDecisions(ctx, stack, log); err != nil {
		stack.Close()
		return err
	}
	printBanner(os.Stdout, stack, abs)
	<-ctx.Done()
	log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return stack.Stop(stopCtx)
}
