package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// settings are ingest's flags and environment variables.
type settings struct {
	common                                  service.Common
	tracing                                 service.Tracing
	addr, apiKeys, apiKeysFile              string
	insecureNoAuth                          bool
	maxBody                                 int64
	callbackSecret, tlsCert, tlsKey         string
	allowlist, trustedProxies               string
	callbackRate                            int
	keysSetting, allowSetting, proxySetting *config.Setting
}

func newSettings(getenv func(string) string) (*settings, *config.Set) {
	s := &settings{}
	set := config.New("ingest", getenv)
	s.common.Bind(set)
	s.tracing.Bind(set)
	set.String(&s.addr, "http-addr", "KYCPIPE_HTTP_ADDR", ":8080", "listen address of the HTTP API")
	s.keysSetting = set.Secret(&s.apiKeys, "api-keys", "KYCPIPE_API_KEYS", "accepted bearer API keys, comma-separated")
	set.String(&s.apiKeysFile, "api-keys-file", "KYCPIPE_API_KEYS_FILE", "", "file with accepted API keys, one per line")
	set.Bool(&s.insecureNoAuth, "insecure-no-auth", "KYCPIPE_INSECURE_NO_AUTH", false, "accept requests without an API key (local experiments only)")
	set.Int64(&s.maxBody, "max-body-bytes", "KYCPIPE_MAX_BODY_BYTES", 1<<20, "largest JSON body accepted (larger is 413)")
	set.Secret(&s.callbackSecret, "callback-secret", "KYCPIPE_CALLBACK_SECRET", "secret path token: Jumio must call /v1/callbacks/jumio/<secret>")
	s.allowSetting = set.String(&s.allowlist, "callback-allowlist", "KYCPIPE_CALLBACK_ALLOWLIST", "", "accept callbacks only from these IPs/CIDRs, comma-separated; \"jumio\" = Jumio's published callback IPs (empty: any source)")
	s.proxySetting = set.String(&s.trustedProxies, "trusted-proxies", "KYCPIPE_TRUSTED_PROXIES", "", "reverse proxies (IPs/CIDRs) whose X-Forwarded-For is believed (empty: none)")
	set.Int(&s.callbackRate, "callback-rate", "KYCPIPE_CALLBACK_RATE", 100, "callbacks accepted per second by this instance (burst: twice as many)")
	set.String(&s.tlsCert, "tls-cert", "KYCPIPE_TLS_CERT", "", "TLS certificate file (with --tls-key: serve HTTPS)")
	set.String(&s.tlsKey, "tls-key", "KYCPIPE_TLS_KEY", "", "TLS private key file")
	return s, set
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	st, set := newSettings(getenv)
	if err := set.Parse(args); err != nil {
		return err
	}
	common, tracing := &st.common, &st.tracing
	addr, apiKeys, apiKeysFile, insecureNoAuth, maxBody := st.addr, st.apiKeys, st.apiKeysFile, st.insecureNoAuth, st.maxBody
	callbackSecret, tlsCert, tlsKey, allowlist, trustedProxies, callbackRate := st.callbackSecret, st.tlsCert, st.tlsKey, st.allowlist, st.trustedProxies, st.callbackRate
	keysSetting, allowSetting, proxySetting := st.keysSetting, st.allowSetting, st.proxySetting
	if err := common.Validate(); err != nil {
		return err
	}
	log, err := common.Logger("ingest")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	stopProfile, err := common.StartCPUProfile(log)
	if err != nil {
		return err
	}
	defer stopProfile()
	tp, flushTraces, err := tracing.Provider(ctx, "ingest")
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = flushTraces(fctx)
	}()
	var keys *pipeline.APIKeys
	switch {
	case apiKeys != "" || apiKeysFile != "":
		if keys, err = pipeline.LoadAPIKeys(apiKeys, apiKeysFile); err != nil {
			return config.Invalid(keysSetting, err)
		}
	case insecureNoAuth:
		log.Warn("authentication is OFF (--insecure-no-auth): anyone who reaches this port can submit jobs")
	default:
		return config.Missing(keysSetting)
	}
	allow, err := pipeline.ParsePrefixes(allowlist)
	if err != nil {
		return config.Invalid(allowSetting, err)
	}
	proxies, err := pipeline.ParsePrefixes(trustedProxies)
	if err != nil {
		return config.Invalid(proxySetting, err)
	}
	if (tlsCert == "") != (tlsKey == "") {
		return errors.New("set both KYCPIPE_TLS_CERT and KYCPIPE_TLS_KEY, or neither")
	}

	reg := service.NewRegistry()
	metrics := pipeline.NewMetrics(reg)
	nc, js, err := common.Connect("ingest", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	topo := common.Topology()
	if err := common.Setup(ctx, js, topo, log); err != nil {
		return err
	}
	in, err := pipeline.NewIngest(ctx, nc, js, pipeline.IngestConfig{
		Topology: topo, APIKeys: keys, InsecureNoAuth: insecureNoAuth, MaxBodyBytes: maxBody,
		DefaultRegion: common.DefaultRegion(), Callbacks: pipeline.CallbackConfig{Secret: callbackSecret, Allowlist: allow, TrustedProxies: proxies,
			RatePerSecond: float64(callbackRate), Burst: 2 * callbackRate},
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Logger: log, Metrics: metrics, TracerProvider: tp,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return config.Invalid(&config.Setting{Flag: "http-addr", Env: "KYCPIPE_HTTP_ADDR"}, err)
	}
	srv := &http.Server{Handler: in.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	serveErr := make(chan error, 1)
	go func() {
		if tlsCert != "" {
			serveErr <- srv.ServeTLS(ln, tlsCert, tlsKey)
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	log.Info("ingest listening", zap.String("addr", ln.Addr().String()), zap.Bool("tls", tlsCert != ""),
		zap.String("nats", nc.ConnectedUrlRedacted()), zap.String("version", service.Version))

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	// Stop taking work: fail readiness, finish in-flight requests, drain NATS.
	log.Info("ingest stopping")
	in.SetDraining(true)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), common.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	_ = nc.Drain()
	if err != nil {
		return err
	}
	log.Info("ingest stopped")
	return nil
}
