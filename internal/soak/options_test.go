package soak

import (
	"bytes"
	"io"
	"testing"
	"time"
)

func TestOptionsWithDefaults(t *testing.T) {
	t.Parallel()
	t.Run("zero values get the defaults", func(t *testing.T) {
		t.Parallel()
		got := Options{}.withDefaults()
		want := Options{Duration: 10 * time.Minute, Jobs: 5000, Workers: 3, Retrievers: 2, Notifiers: 2, EraseRate: 0.05, KillEvery: 20 * time.Second,
			NATSRestartEvery: 3 * time.Minute, DrainTimeout: 5 * time.Minute}
		if got.Seed == 0 {
			t.Error("Seed left at 0; want a time-based seed")
		}
		if got.Progress != io.Discard {
			t.Errorf("Progress = %v, want io.Discard", got.Progress)
		}
		got.Seed, got.Progress = 0, nil
		if !equalOptions(got, want) {
			t.Errorf("withDefaults() = %+v, want %+v", got, want)
		}
	})
	t.Run("set values are kept", func(t *testing.T) {
		t.Parallel()
		var progress bytes.Buffer
		in := Options{BinDir: "bin", WorkDir: "work", Cluster: true, Duration: time.Minute, Jobs: 7, Workers: 1, Retrievers: 4, Notifiers: -1, EraseRate: 0.5,
			KillEvery: time.Second, NATSRestartEvery: 2 * time.Second, DrainTimeout: 3 * time.Second, NoFaults: true,
			Seed: 42, Progress: &progress}
		got := in.withDefaults()
		if !equalOptions(got, in) || got.Progress != in.Progress {
			t.Errorf("withDefaults() = %+v, want it unchanged: %+v", got, in)
		}
	})
}

// equalOptions compares the fields withDefaults fills or must keep
// (ProcessEnv, SimRateLimits and Progress are compared by the callers or
// not defaulted).
func equalOptions(a, b Options) bool {
	type fields struct {
		BinDir, WorkDir                                     string
		Cluster, NoFaults                                   bool
		Duration, KillEvery, NATSRestartEvery, DrainTimeout time.Duration
		Jobs, Workers, Retrievers, Notifiers                int
		EraseRate                                           float64
		Seed                                                uint64
	}
	f := func(o Options) fields {
		return fields{o.BinDir, o.WorkDir, o.Cluster, o.NoFaults, o.Duration, o.KillEvery, o.NATSRestartEvery, o.DrainTimeout,
			o.Jobs, o.Workers, o.Retrievers, o.Notifiers, o.EraseRate, o.Seed}
	}
	return f(a) == f(b)
}
