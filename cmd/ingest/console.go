package main

import (
	"context"
	"net/http"

	"github.com/kycpipe/kycpipe/internal/console"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// newConsole returns the operator console as ingest serves it, or nil
// when it is off (KYCPIPE_CONSOLE=false, or no API key to sign in with).
func newConsole(ctx context.Context, env *service.Env, st *settings) (http.Handler, error) {
	switch {
	case !st.console:
		return nil, nil
	case st.keys == nil:
		env.Log.Warn("the console is off: operators sign in with an API key, and none is configured")
		return nil, nil
	}
	hooks, err := pipeline.NewWebhookEndpoints(ctx, env.JS, env.Topology, st.hooks.Settings(), nil)
	if err != nil {
		return nil, err
	}
	con, err := console.New(ctx, env.JS, console.Config{Topology: env.Topology, APIKeys: st.keys, ReadOnly: st.consoleReadOnly,
		SecureCookies: st.consoleSecure || st.tlsCert != "", TrustedProxies: st.proxies, Gatherer: env.Registry,
		MetricsURLs: st.consoleMetricsURLs, Webhooks: hooks, Logger: env.Log.Named("console")})
	if err != nil {
		return nil, err
	}
	return con, nil
}
