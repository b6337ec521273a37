package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Stream and subject of the raw baselines and the reference server. They
// live on the same NATS server as the pipeline, with file storage like the
// pipeline's streams.
const (
	rawStream  = "BENCH_RAW"
	rawSubject = "bench.raw"
	refStream  = "BENCH_REF"
	refSubject = "bench.ref"
)

func ensureStream(ctx context.Context, js jetstream.JetStream, name, subject string) error {
	_ = js.DeleteStream(ctx, name)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage})
	return err
}

// RawResult is a raw JetStream baseline.
type RawResult struct {
	Publishers int
	Messages   int
	Elapsed    time.Duration
	Lat        Latencies
}

// Rate is messages per second.
func (r RawResult) Rate() float64 { return float64(r.Messages) / r.Elapsed.Seconds() }

// RawPublish publishes size-byte messages synchronously (each waits for its
// JetStream ack) from publishers goroutines sharing one connection, for d.
func RawPublish(ctx context.Context, nc *nats.Conn, publishers, size int, d time.Duration) (RawResult, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return RawResult{}, err
	}
	if err := ensureStream(ctx, js, rawStream, rawSubject); err != nil {
		return RawResult{}, err
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res := RawResult{Publishers: publishers}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for i := 0; i < publishers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat Latencies
			for ctx.Err() == nil {
				t0 := time.Now()
				if _, err := js.Publish(context.WithoutCancel(ctx), rawSubject, payload); err != nil {
					failed.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.Lat = append(res.Lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Messages = len(res.Lat)
	res.Lat.sort()
	if n := failed.Load(); n > 0 {
		return res, fmt.Errorf("bench: %d raw publishes failed", n)
	}
	return res, nil
}

// RawConsume consumes and acknowledges every message RawPublish stored,
// with a pull consumer (Consume, acks sent without waiting for the
// server's confirmation, as the pipeline's stages do).
func RawConsume(ctx context.Context, nc *nats.Conn) (RawResult, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return RawResult{}, err
	}
	s, err := js.Stream(ctx, rawStream)
	if err != nil {
		return RawResult{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return RawResult{}, err
	}
	total := int(info.State.Msgs)
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
	if err != nil {
		return RawResult{}, err
	}
	done := make(chan struct{})
	var got atomic.Int64
	start := time.Now()
	cc, err := c.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if int(got.Add(1)) == total {
			close(done)
		}
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		return RawResult{}, err
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return RawResult{}, ctx.Err()
	case <-time.After(5 * time.Minute):
		return RawResult{}, fmt.Errorf("bench: consumed %d of %d messages", got.Load(), total)
	}
	return RawResult{Publishers: 1, Messages: total, Elapsed: time.Since(start)}, nil
}

// ServeReference runs the minimal reference ingest: decode a JSON body,
// publish it to JetStream synchronously, answer 202. It is the cheapest
// durable ingest there is, the yardstick for kycpipe's ingest.
func ServeReference(ctx context.Context, natsURL, addr string) error {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := ensureStream(ctx, js, refStream, refSubject); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/verifications", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		var req messages.VerificationRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		if _, err := js.Publish(r.Context(), refSubject, body); err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"ACCEPTED"}`))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
