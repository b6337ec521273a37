package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// settings are ingest's flags and environment variables.
type settings struct {
	common                                  service.Common
	tracing                                 service.Tracing
	hooks                                   service.Webhooks
	addr, apiKeys, apiKeysFile              string
	insecureNoAuth                          bool
	maxBody                                 int64
	callbackSecret, tlsCert, tlsKey         string
	allowlist, trustedProxies               string
	callbackRate                            int
	keysSetting, allowSetting, proxySetting *config.Setting
	keysFileSetting                         *config.Setting
	console, consoleReadOnly, consoleSecure bool
	consoleMetrics                          string
	consoleMetricsURLs                      []string
	consoleMetricsSetting                   *config.Setting

	// Set by check, before anything connects.
	keys           *pipeline.APIKeys
	allow, proxies []netip.Prefix
	ln             net.Listener
}

func newSettings(getenv func(string) string) (*settings, *config.Set) {
	s := &settings{}
	set := config.New("ingest", getenv)
	s.common.Bind(set)
	s.tracing.Bind(set)
	s.hooks.Bind(set)
	set.String(&s.addr, "http-addr", "KYCPIPE_HTTP_ADDR", ":8080", "listen address of the HTTP API").HostPort()
	s.keysSetting = set.Secret(&s.apiKeys, "api-keys", "KYCPIPE_API_KEYS", "accepted bearer API keys, comma-separated: KEY (every scope) or NAME:SCOPES:KEY, SCOPES from submit+read+erase+admin+metrics; keys of 16+ characters")
	s.keysFileSetting = set.String(&s.apiKeysFile, "api-keys-file", "KYCPIPE_API_KEYS_FILE", "", "file with accepted API keys, one entry per line (KEY or NAME:SCOPES:KEY; # comments)").File()
	set.Bool(&s.insecureNoAuth, "insecure-no-auth", "KYCPIPE_INSECURE_NO_AUTH", false, "accept requests without an API key (local experiments only)")
	set.Int64(&s.maxBody, "max-body-bytes", "KYCPIPE_MAX_BODY_BYTES", 1<<20, "largest JSON body accepted (larger is 413)").Positive()
	set.Secret(&s.callbackSecret, "callback-secret", "KYCPIPE_CALLBACK_SECRET", "secret path token: Jumio must call /v1/callbacks/jumio/<secret> (with neither this nor an allowlist, ingest warns at every start)")
	s.allowSetting = set.String(&s.allowlist, "callback-allowlist", "KYCPIPE_CALLBACK_ALLOWLIST", "", "accept callbacks only from these IPs/CIDRs, comma-separated; \"jumio\" = Jumio's published callback IPs (empty: any source)")
	s.proxySetting = set.String(&s.trustedProxies, "trusted-proxies", "KYCPIPE_TRUSTED_PROXIES", "", "reverse proxies (IPs/CIDRs) whose X-Forwarded-For is believed (empty: none)")
	set.Int(&s.callbackRate, "callback-rate", "KYCPIPE_CALLBACK_RATE", 100, "callbacks accepted per second from one source address (an IPv6 /64) by this instance (burst: twice as many)").Positive()
	set.String(&s.tlsCert, "tls-cert", "KYCPIPE_TLS_CERT", "", "TLS certificate file (with --tls-key: serve HTTPS)").File()
	set.String(&s.tlsKey, "tls-key", "KYCPIPE_TLS_KEY", "", "TLS private key file").File()
	set.Bool(&s.console, "console", "KYCPIPE_CONSOLE", true, "serve the operator console at /console/ (operators sign in with an API key; needs API keys)")
	set.Bool(&s.consoleReadOnly, "console-readonly", "KYCPIPE_CONSOLE_READONLY", false, "console without actions: no replay, erase, reveal or resend")
	set.Bool(&s.consoleSecure, "console-secure-cookies", "KYCPIPE_CONSOLE_SECURE_COOKIES", false, "mark console cookies Secure on plain HTTP too (behind a proxy that terminates TLS; with --tls-cert they are)")
	s.consoleMetricsSetting = set.String(&s.consoleMetrics, "console-metrics-urls", "KYCPIPE_CONSOLE_METRICS_URLS", "", "the /metrics URLs of the workers and retrievers, comma-separated: the console's Jumio error and 429 rates")
	return s, set
}

// check validates what needs no connection and opens the listener, so a
// bad setting stops ingest before it connects to NATS.
func (st *settings) check() error {
	var err error
	switch {
	case st.apiKeys != "" || st.apiKeysFile != "":
		if st.keys, err = pipeline.LoadAPIKeys(st.apiKeys, st.apiKeysFile); err != nil {
			switch {
			case st.apiKeys == "":
				return config.Invalid(st.keysFileSetting, err)
			case st.apiKeysFile != "":
				return fmt.Errorf("invalid KYCPIPE_API_KEYS or KYCPIPE_API_KEYS_FILE (--api-keys, --api-keys-file): %w", err)
			}
			return config.Invalid(st.keysSetting, err)
		}
	case !st.insecureNoAuth:
		return config.Missing(st.keysSetting)
	}
	if st.allow, err = pipeline.ParsePrefixes(st.allowlist); err != nil {
		return config.Invalid(st.allowSetting, err)
	}
	if st.proxies, err = pipeline.ParsePrefixes(st.trustedProxies); err != nil {
		return config.Invalid(st.proxySetting, err)
	}
	for _, u := range strings.Split(st.consoleMetrics, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return config.Invalid(st.consoleMetricsSetting, fmt.Errorf("%q is not an http(s) URL", u))
		}
		st.consoleMetricsURLs = append(st.consoleMetricsURLs, u)
	}
	if (st.tlsCert == "") != (st.tlsKey == "") {
		return errors.New("set both KYCPIPE_TLS_CERT and KYCPIPE_TLS_KEY, or neither")
	}
	if st.tlsCert != "" {
		if _, err := tls.LoadX509KeyPair(st.tlsCert, st.tlsKey); err != nil {
			return fmt.Errorf("invalid KYCPIPE_TLS_CERT / KYCPIPE_TLS_KEY (--tls-cert, --tls-key): %w", err)
		}
	}
	if st.ln, err = net.Listen("tcp", st.addr); err != nil {
		return config.Invalid(&config.Setting{Flag: "http-addr", Env: "KYCPIPE_HTTP_ADDR"}, err)
	}
	return nil
}
