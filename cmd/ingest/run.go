package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

func run(ctx context.Context, args []string, getenv func(string) string) error {
	st, set := newSettings(getenv)
	if err := set.Parse(args); err != nil {
		return err
	}
	return service.Program{Name: "ingest", Common: &st.common, Tracing: &st.tracing, Check: st.check,
		Build: func(ctx context.Context, env *service.Env) (service.Service, error) {
			if st.insecureNoAuth && st.keys == nil {
				env.Log.Warn("authentication is OFF (--insecure-no-auth): anyone who reaches this port can submit jobs")
			}
			con, err := newConsole(ctx, env, st)
			if err != nil {
				return nil, err
			}
			in, err := pipeline.NewIngest(ctx, env.NC, env.JS, pipeline.IngestConfig{
				Topology: env.Topology, APIKeys: st.keys, InsecureNoAuth: st.insecureNoAuth, MaxBodyBytes: st.maxBody,
				DefaultRegion: st.common.DefaultRegion(), Callbacks: pipeline.CallbackConfig{Secret: st.callbackSecret,
					Allowlist: st.allow, TrustedProxies: st.proxies, RatePerSecond: float64(st.callbackRate), Burst: 2 * st.callbackRate},
				Webhooks:       st.hooks.Settings(),
				MetricsHandler: promhttp.HandlerFor(env.Registry, promhttp.HandlerOpts{}), Logger: env.Log, Metrics: env.Metrics, TracerProvider: env.Tracer,
				Console: con,
			})
			if err != nil {
				return nil, err
			}
			return &service.HTTPService{API: in, Listener: st.ln, TLSCert: st.tlsCert, TLSKey: st.tlsKey,
				ShutdownTimeout: st.common.ShutdownTimeout, Log: env.Log}, nil
		}}.Run(ctx)
}
