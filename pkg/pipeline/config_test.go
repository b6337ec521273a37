package pipeline

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Every concurrency, budget and duration of the stage configurations is
// refused when negative, with an error naming the field; zero means the
// default.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	clients := &Clients{}
	keys := &APIKeys{}
	for _, tt := range []struct {
		field string
		err   error
	}{
		{"Concurrency", WorkerConfig{Jumio: clients, Concurrency: -1}.validate()},
		{"AccountConcurrency", WorkerConfig{Jumio: clients, AccountConcurrency: -1}.validate()},
		{"RetryBudget", WorkerConfig{Jumio: clients, RetryBudget: -1}.validate()},
		{"ShutdownGrace", WorkerConfig{Jumio: clients, ShutdownGrace: -time.Second}.validate()},
		{"ProcessingGrace", WorkerConfig{Jumio: clients, ProcessingGrace: -time.Second}.validate()},
		{"Backoff.Initial", WorkerConfig{Jumio: clients, Backoff: Backoff{Initial: -time.Second}}.validate()},
		{"Backoff.Max", WorkerConfig{Jumio: clients, Backoff: Backoff{Max: -time.Second}}.validate()},
		{"Backoff.Max", WorkerConfig{Jumio: clients, Backoff: Backoff{Initial: time.Minute, Max: time.Second}}.validate()},
		{"Backoff.Multiplier", WorkerConfig{Jumio: clients, Backoff: Backoff{Multiplier: 0.5}}.validate()},
		{"Delays.GiveUpRetry", WorkerConfig{Jumio: clients, Delays: Delays{GiveUpRetry: -1}}.validate()},
		{"Delays.SweepRetry", WorkerConfig{Jumio: clients, Delays: Delays{SweepRetry: -1}}.validate()},
		{"Delays.PanicRetry", WorkerConfig{Jumio: clients, Delays: Delays{PanicRetry: -1}}.validate()},
		{"Jumio", WorkerConfig{}.validate()},
		{"Concurrency", RetrieverConfig{Jumio: clients, Concurrency: -1}.validate()},
		{"RetryBudget", RetrieverConfig{Jumio: clients, RetryBudget: -1}.validate()},
		{"ShutdownGrace", RetrieverConfig{Jumio: clients, ShutdownGrace: -1}.validate()},
		{"Schedule[1]", RetrieverConfig{Jumio: clients, Schedule: []time.Duration{time.Minute, time.Second}}.validate()},
		{"Schedule[0]", RetrieverConfig{Jumio: clients, Schedule: []time.Duration{-time.Second}}.validate()},
		{"Backoff.Initial", RetrieverConfig{Jumio: clients, Backoff: Backoff{Initial: -1}}.validate()},
		{"Delays.GiveUpRetry", RetrieverConfig{Jumio: clients, Delays: Delays{GiveUpRetry: -1}}.validate()},
		{"Jumio", RetrieverConfig{}.validate()},
		{"MaxBodyBytes", IngestConfig{APIKeys: keys, MaxBodyBytes: -1}.validate()},
		{"MaxImageBytes", IngestConfig{APIKeys: keys, MaxImageBytes: -1}.validate()},
		{"RetryAfter", IngestConfig{APIKeys: keys, RetryAfter: -time.Second}.validate()},
		{"PublishTimeout", IngestConfig{APIKeys: keys, PublishTimeout: -time.Second}.validate()},
		{"Callbacks.RatePerSecond", IngestConfig{APIKeys: keys, Callbacks: CallbackConfig{RatePerSecond: -1}}.validate()},
		{"Callbacks.Burst", IngestConfig{APIKeys: keys, Callbacks: CallbackConfig{Burst: -1}}.validate()},
		{"DefaultRegion", IngestConfig{APIKeys: keys, DefaultRegion: "mars-1"}.validate()},
		{"APIKeys", IngestConfig{}.validate()},
	} {
		if tt.err == nil || !errors.Is(tt.err, ErrInvalidConfig) || !strings.Contains(tt.err.Error(), tt.field+" ") {
			t.Errorf("%s: got %v, want an invalid-configuration error naming the field", tt.field, tt.err)
		}
	}
	for name, err := range map[string]error{
		"worker":    WorkerConfig{Jumio: clients}.validate(),
		"retriever": RetrieverConfig{Jumio: clients}.validate(),
		"ingest":    IngestConfig{InsecureNoAuth: true}.validate(),
	} {
		if err != nil {
			t.Errorf("zero %s config (all defaults) refused: %v", name, err)
		}
	}
}
