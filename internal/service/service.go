// Package service holds what kycpipe's binaries share: the common settings
// (DESIGN 3.5), logging, the NATS connection, provisioning, and the
// operations listener (/healthz, /readyz, /metrics).
package service

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Version is the build's version, set with -ldflags "-X …service.Version=…".
var Version = "dev"

// Common are the settings every binary has.
type Common struct {
	NATSURL         string
	NATSCreds       string
	NATSUser        string
	NATSPassword    string
	NATSTLSCA       string
	SubjectPrefix   string
	Replicas        int
	Region          string
	LogFormat       string
	LogLevel        string
	Provision       bool
	ShutdownTimeout time.Duration
	AckWait         time.Duration
	JobsMaxMsgs     int64
	JobsMaxBytes    int64
	CPUProfile      string
	Retention       time.Duration
	RetentionJumio  bool
	SecureErase     bool

	regionSetting *config.Setting
	prefixSetting *config.Setting
	logSetting    *config.Setting
}

// Bind registers the common settings.
func (c *Common) Bind(s *config.Set) {
	s.String(&c.NATSURL, "nats-url", "KYCPIPE_NATS_URL", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	s.String(&c.NATSCreds, "nats-creds", "KYCPIPE_NATS_CREDS", "", "NATS credentials file (JWT + nkey)").File()
	s.String(&c.NATSUser, "nats-user", "KYCPIPE_NATS_USER", "", "NATS user name")
	s.Secret(&c.NATSPassword, "nats-password", "KYCPIPE_NATS_PASSWORD", "NATS password")
	s.String(&c.NATSTLSCA, "nats-tls-ca", "KYCPIPE_NATS_TLS_CA", "", "CA certificate file to verify the NATS server's TLS certificate").File()
	c.prefixSetting = s.String(&c.SubjectPrefix, "subject-prefix", "KYCPIPE_SUBJECT_PREFIX", messages.DefaultPrefix, "subject prefix of every stream and subject")
	s.Int(&c.Replicas, "stream-replicas", "KYCPIPE_STREAM_REPLICAS", 1, "replicas of the streams and buckets this process creates (3 on a cluster)").Between(1, 5)
	c.regionSetting = s.String(&c.Region, "jumio-region", "JUMIO_REGION", string(jumio.DefaultRegion), "default Jumio region: amer-1, emea-1, apac-1 (or US, EU, SG)")
	c.logSetting = s.String(&c.LogFormat, "log-format", "KYCPIPE_LOG_FORMAT", "json", "log format: json or console")
	s.String(&c.LogLevel, "log-level", "KYCPIPE_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	s.Bool(&c.Provision, "provision", "KYCPIPE_PROVISION", true, "create or update streams, consumers and buckets at startup (false: only check they exist)")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "KYCPIPE_SHUTDOWN_TIMEOUT", 25*time.Second, "bound on graceful shutdown after SIGTERM").Positive()
	s.Int64(&c.JobsMaxMsgs, "jobs-max-msgs", "KYCPIPE_JOBS_MAX_MSGS", 1_000_000, "jobs the queue holds before ingest refuses new ones with 503").Positive()
	s.Int64(&c.JobsMaxBytes, "jobs-max-bytes", "KYCPIPE_JOBS_MAX_BYTES", 1<<30, "bytes the job queue holds before ingest refuses new jobs with 503").Positive()
	ackWait := s.Duration(&c.AckWait, "ack-wait", "KYCPIPE_ACK_WAIT", 30*time.Second, "consumers' AckWait: how long a message taken by a process that died waits before redelivery (set the same on every service; at least 1s)")
	ackWait.Check(func() string {
		if c.AckWait < time.Second {
			return "must be at least 1s"
		}
		return ""
	})
	s.String(&c.CPUProfile, "cpu-profile", "KYCPIPE_CPU_PROFILE", "", "write a CPU profile (pprof) to this file from start to shutdown, for performance work")
	s.Duration(&c.Retention, "retention", "KYCPIPE_RETENTION", 0, "erase every job that ended longer ago than this (e.g. 720h), and cap every stream's age to it; 0 keeps jobs (until the job-state TTL)").Check(func() string {
		if c.Retention != 0 && c.Retention < time.Hour {
			return "must be 0 (keep) or at least 1h"
		}
		return ""
	})
	s.Bool(&c.SecureErase, "erase-secure", "KYCPIPE_ERASE_SECURE", false, "erasures overwrite the deleted messages' bytes on disk (about 10 ms of NATS server time each); without it, rely on NATS encryption at rest")
	s.Bool(&c.RetentionJumio, "retention-jumio", "KYCPIPE_RETENTION_JUMIO", true, "jobs erased by retention are deleted at Jumio too (false: left to Jumio's own retention)")
}

// StartCPUProfile starts the CPU profile asked for by --cpu-profile; the
// returned function stops it and closes the file. Without the setting it
// does nothing.
func (c *Common) StartCPUProfile(log *zap.Logger) (stop func(), err error) {
	if c.CPUProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(c.CPUProfile)
	if err != nil {
		return nil, fmt.Errorf("invalid KYCPIPE_CPU_PROFILE (--cpu-profile): %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	log.Info("writing a CPU profile until shutdown", zap.String("file", c.CPUProfile))
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// Validate checks the common settings.
func (c *Common) Validate() error {
	if _, err := jumio.ParseRegion(c.Region); err != nil {
		return config.Invalid(c.regionSetting, err)
	}
	if _, err := messages.NewSubjects(c.SubjectPrefix); err != nil {
		return config.Invalid(c.prefixSetting, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return config.Invalid(c.logSetting, errors.New("want json or console"))
	}
	return nil
}

// DefaultRegion returns the parsed default region.
func (c *Common) DefaultRegion() jumio.Region {
	r, _ := jumio.ParseRegion(c.Region)
	return r
}

// Logger builds the process logger: JSON by default, console for humans.
func (c *Common) Logger(component string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("invalid KYCPIPE_LOG_LEVEL (--log-level) %q: want debug, info, warn or error", c.LogLevel)
	}
	cfg := zap.NewProductionConfig()
	if c.LogFormat == "console" {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	// The caller annotation walks the stack on every line: a tenth of a
	// worker's CPU at full load. Messages and the component name identify
	// where a line comes from.
	cfg.DisableCaller = c.LogFormat == "json"
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	l, err := cfg.Build()
	if err != nil {
		return nil, err
	}
	return l.With(zap.String("component", component)), nil
}

// Topology returns the topology the settings describe.
func (c *Common) Topology() pipeline.Topology {
	return pipeline.Topology{Subjects: messages.MustSubjects(c.SubjectPrefix), Replicas: c.Replicas,
		WorkerAckWait: c.AckWait, RetrieverAckWait: c.AckWait, JobsMaxMsgs: c.JobsMaxMsgs, JobsMaxBytes: c.JobsMaxBytes,
		Retention: c.Retention, SecureErase: c.SecureErase}.WithDefaults()
}

// Connect connects to NATS with the configured auth and TLS, reconnecting
// forever. onClosed (optional) is called when the connection is closed:
// by this process (Close, Drain), or for good by an error the client does
// not recover from (a server refusal, a protocol error); the caller tells
// the two apart.
func (c *Common) Connect(name string, log *zap.Logger, onClosed func(error)) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{
		nats.Name("kycpipe-" + name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to NATS", zap.String("server", nc.ConnectedUrlRedacted())) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			log.Warn("NATS error", zap.Error(err))
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if onClosed != nil {
				onClosed(cmp.Or(nc.LastError(), errors.New("closed")))
			}
		}),
	}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.NATSUser != "" {
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
	}
	if c.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
	}
	nc, err := nats.Connect(strings.TrimSpace(c.NATSURL), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s (KYCPIPE_NATS_URL): %w", redactURL(c.NATSURL), err)
	}
	// Asynchronous publishes that JetStream never answers (a stream leader
	// lost as the message arrived) fail after this instead of waiting for
	// good: pkg/pipeline bounds its own waits (awaitAck), and this also
	// frees the futures of publishes nobody waits for (index entries),
	// which would otherwise hold slots of the pending-publish limit.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func redactURL(u string) string {
	var out []string
	for _, one := range strings.Split(u, ",") {
		if at := strings.LastIndex(one, "@"); at >= 0 {
			if i := strings.Index(one, "://"); i >= 0 && i < at {
				one = one[:i+3] + "[redacted]" + one[at:]
			}
		}
		out = append(out, one)
	}
	return strings.Join(out, ",")
}

// Setup provisions the topology (or, with provisioning off or not
// permitted, checks that it exists). It retries until ctx ends, so a
// service started before NATS or before an operator provisions waits.
func (c *Common) Setup(ctx context.Context, js jetstream.JetStream, t pipeline.Topology, log *zap.Logger) error {
	for attempt := 1; ; attempt++ {
		var err error
		if c.Provision {
			// A refused JetStream API request only times out; the server's
			// permissions violation arrives asynchronously (LastError).
			err = provision(ctx, js, t)
			if err != nil && IsPermission(err, js.Conn()) {
				log.Warn("not permitted to provision; checking that the resources exist instead", zap.Error(err))
				err = pipeline.Check(ctx, js, t)
			}
		} else {
			err = pipeline.Check(ctx, js, t)
		}
		if err == nil {
			return nil
		}
		d := min(time.Duration(attempt)*time.Second, 10*time.Second)
		log.Warn("JetStream resources not ready; retrying", zap.Error(err), zap.Duration("in", d))
		select {
		case <-ctx.Done():
			return fmt.Errorf("JetStream resources not ready: %w", err)
		case <-time.After(d):
		}
	}
}

// provision runs pipeline.Provision, cut short when the server reports a
// permissions violation: a refused JetStream request gets no answer and
// would wait for its context, while the refusal itself arrives
// asynchronously on the connection.
func provision(ctx context.Context, js jetstream.JetStream, t pipeline.Topology) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- pipeline.Provision(ctx, js, t) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if isPermission(js.Conn().LastError()) {
				cancel()
				return fmt.Errorf("%w (%v)", <-done, js.Conn().LastError())
			}
		}
	}
}

// IsPermission reports whether err (or the connection's last asynchronous
// error, which is how a refused request is reported) is a NATS
// permissions violation.
func IsPermission(err error, nc *nats.Conn) bool {
	return isPermission(err) || (nc != nil && isPermission(nc.LastError()))
}

func isPermission(err error) bool {
	return err != nil && (errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permission"))
}

// Jumio are the settings of the Jumio API.
type Jumio struct {
	ClientID     string
	ClientSecret string
	BaseURL      string
	AuthURL      string
	AccountURL   string
	RetrievalURL string
	UserAgent    string
	Timeout      time.Duration
	// Regions are the per-region overrides (DESIGN 3.5):
	// JUMIO_CLIENT_ID_<REGION>, JUMIO_CLIENT_SECRET_<REGION> and
	// JUMIO_BASE_URL_<REGION>, REGION being AMER_1, EMEA_1 or APAC_1.
	Regions map[jumio.Region]*RegionSettings
	// TracerProvider, when set, records a span per Jumio call.
	TracerProvider trace.TracerProvider

	idSetting, secretSetting *config.Setting
	urlSettings              [4]*config.Setting
	uaSetting                *config.Setting
	defaultUA                string
}

// RegionSettings are one region's own Jumio settings.
type RegionSettings struct {
	ClientID, ClientSecret, BaseURL       string
	idSetting, secretSetting, urlSettting *config.Setting
}

// regionEnv is a region's suffix in environment variable names: AMER_1.
func regionEnv(r jumio.Region) string {
	return strings.ToUpper(strings.ReplaceAll(string(r), "-", "_"))
}

// Bind registers the Jumio settings.
func (j *Jumio) Bind(s *config.Set) {
	j.idSetting = s.String(&j.ClientID, "jumio-client-id", "JUMIO_CLIENT_ID", "", "Jumio OAuth2 client ID (the default for every region without its own)")
	j.secretSetting = s.Secret(&j.ClientSecret, "jumio-client-secret", "JUMIO_CLIENT_SECRET", "Jumio OAuth2 client secret (the default for every region without its own)")
	j.urlSettings = [4]*config.Setting{
		s.String(&j.BaseURL, "jumio-base-url", "JUMIO_BASE_URL", "", "one base URL serving every Jumio service (simulator, proxy); unset = Jumio's real hosts"),
		s.String(&j.AuthURL, "jumio-auth-url", "JUMIO_AUTH_URL", "", "base URL of Jumio's token service (overrides --jumio-base-url)"),
		s.String(&j.AccountURL, "jumio-account-url", "JUMIO_ACCOUNT_URL", "", "base URL of Jumio's account service (overrides --jumio-base-url)"),
		s.String(&j.RetrievalURL, "jumio-retrieval-url", "JUMIO_RETRIEVAL_URL", "", "base URL of Jumio's retrieval service (overrides --jumio-base-url)"),
	}
	j.Regions = map[jumio.Region]*RegionSettings{}
	for _, r := range jumio.Regions {
		rs := &RegionSettings{}
		env := regionEnv(r)
		rs.idSetting = s.String(&rs.ClientID, "jumio-client-id-"+string(r), "JUMIO_CLIENT_ID_"+env, "",
			"Jumio OAuth2 client ID of region "+string(r)+" (overrides JUMIO_CLIENT_ID there: each data center has its own portal and credentials)")
		rs.secretSetting = s.Secret(&rs.ClientSecret, "jumio-client-secret-"+string(r), "JUMIO_CLIENT_SECRET_"+env,
			"Jumio OAuth2 client secret of region "+string(r))
		rs.urlSettting = s.String(&rs.BaseURL, "jumio-base-url-"+string(r), "JUMIO_BASE_URL_"+env, "",
			"one base URL serving every Jumio service of region "+string(r)+" (simulator, proxy; overrides the other Jumio URLs there)")
		j.Regions[r] = rs
	}
	j.defaultUA = "kycpipe/" + Version
	j.uaSetting = s.String(&j.UserAgent, "jumio-user-agent", "JUMIO_USER_AGENT", j.defaultUA,
		"User-Agent sent to Jumio: your company and app name, e.g. AcmeBank-Onboarding/2.1 (required with Jumio's real hosts: Jumio answers 403 to missing or generic ones)")
	s.Duration(&j.Timeout, "jumio-timeout", "JUMIO_TIMEOUT", 30*time.Second, "bound on each call to Jumio").Positive()
}

// CheckJumio fails early, before connecting anywhere, on missing Jumio
// credentials: the default pair, unless the default region (region) has
// its own; and no half pair anywhere.
func (j *Jumio) CheckJumio(region jumio.Region) error {
	for _, r := range jumio.Regions {
		rs := j.Regions[r]
		if rs == nil {
			continue
		}
		switch {
		case rs.ClientID != "" && rs.ClientSecret == "":
			return config.Missing(rs.secretSetting)
		case rs.ClientID == "" && rs.ClientSecret != "":
			return config.Missing(rs.idSetting)
		}
	}
	if rs := j.Regions[region]; (j.ClientID == "" && j.ClientSecret == "") && rs != nil && rs.ClientID != "" {
		// The default region has its own pair; a region configured with a
		// base URL but no pair of its own needs the default pair, and a job
		// for a region with no credentials at all is refused.
		for _, r := range jumio.Regions {
			if rs := j.Regions[r]; rs != nil && rs.BaseURL != "" && rs.ClientID == "" {
				return config.Missing(rs.idSetting)
			}
		}
		return nil
	}
	if j.ClientID == "" {
		return config.Missing(j.idSetting)
	}
	if j.ClientSecret == "" {
		return config.Missing(j.secretSetting)
	}
	return nil
}

// HasCredentials reports whether any Jumio credentials are configured.
func (j *Jumio) HasCredentials() bool {
	if j.ClientID != "" || j.ClientSecret != "" {
		return true
	}
	for _, rs := range j.Regions {
		if rs.ClientID != "" || rs.ClientSecret != "" {
			return true
		}
	}
	return false
}

// realHosts reports whether some region talks to Jumio's real hosts: no
// base URL of its own, no JUMIO_BASE_URL, and a service without its URL.
func (j *Jumio) realHosts() bool {
	if j.BaseURL != "" || (j.AuthURL != "" && j.AccountURL != "" && j.RetrievalURL != "") {
		// Every region without its own URL goes through the overrides.
		return false
	}
	for _, r := range jumio.Regions {
		if rs := j.Regions[r]; rs == nil || rs.BaseURL == "" {
			return true
		}
	}
	return false
}

// genericUserAgent reports whether ua says nothing of its sender: empty,
// kycpipe's defaults, or a library's.
func (j *Jumio) genericUserAgent(ua string) bool {
	ua = strings.TrimSpace(ua)
	l := strings.ToLower(ua)
	return ua == "" || ua == j.defaultUA || strings.EqualFold(ua, jumio.DefaultUserAgent) ||
		strings.HasPrefix(l, "go-http-client") || strings.HasPrefix(l, "curl/")
}

// Check validates the Jumio settings without calling Jumio: credentials
// present (see CheckJumio), base URLs usable, and, with Jumio's real hosts,
// a User-Agent naming the business (jumio-api.md §10.5). It names the
// setting at fault.
func (j *Jumio) Check(region jumio.Region) error {
	if err := j.CheckJumio(region); err != nil {
		return err
	}
	creds := jumio.Credentials{ClientID: "check", ClientSecret: "check"}
	opts := []func(string) jumio.Option{jumio.WithBaseURL, jumio.WithAuthURL, jumio.WithAccountURL, jumio.WithRetrievalURL}
	for i, v := range []string{j.BaseURL, j.AuthURL, j.AccountURL, j.RetrievalURL} {
		if v == "" {
			continue
		}
		if _, err := jumio.New(creds, opts[i](v)); err != nil {
			return config.Invalid(j.urlSettings[i], err)
		}
	}
	for _, r := range jumio.Regions {
		if rs := j.Regions[r]; rs != nil && rs.BaseURL != "" {
			if _, err := jumio.New(creds, jumio.WithBaseURL(rs.BaseURL)); err != nil {
				return config.Invalid(rs.urlSettting, err)
			}
		}
	}
	if j.realHosts() && j.genericUserAgent(j.UserAgent) {
		return config.Invalid(j.uaSetting, fmt.Errorf("%q with Jumio's real hosts: Jumio requires the User-Agent "+
			"to name your business or entity and answers 403 to missing or suspicious ones (jumio-api.md §10.5); "+
			"set it to your company and app name, e.g. AcmeBank-Onboarding/2.1 (a simulator or proxy set with JUMIO_BASE_URL needs none)", j.UserAgent))
	}
	return nil
}

// Clients builds the per-region Jumio clients.
func (j *Jumio) Clients(region jumio.Region, log *zap.Logger, observer jumio.Observer, limiters *pipeline.Limiters) (*pipeline.Clients, error) {
	if err := j.CheckJumio(region); err != nil {
		return nil, err
	}
	cfg := pipeline.JumioConfig{
		Credentials:   jumio.Credentials{ClientID: j.ClientID, ClientSecret: j.ClientSecret},
		DefaultRegion: region, BaseURL: j.BaseURL, AuthURL: j.AuthURL, AccountURL: j.AccountURL,
		RetrievalURL: j.RetrievalURL, UserAgent: j.UserAgent, Timeout: j.Timeout, Observer: observer,
		TracerProvider: j.TracerProvider, CredentialSettings: "JUMIO_CLIENT_ID / JUMIO_CLIENT_SECRET",
	}
	for _, r := range jumio.Regions {
		rs := j.Regions[r]
		if rs == nil || (rs.ClientID == "" && rs.BaseURL == "") {
			continue
		}
		if cfg.Regions == nil {
			cfg.Regions = map[jumio.Region]pipeline.RegionConfig{}
		}
		rc := pipeline.RegionConfig{BaseURL: rs.BaseURL}
		if rs.ClientID != "" {
			rc.Credentials = jumio.Credentials{ClientID: rs.ClientID, ClientSecret: rs.ClientSecret}
			rc.CredentialSettings = "JUMIO_CLIENT_ID_" + regionEnv(r) + " / JUMIO_CLIENT_SECRET_" + regionEnv(r)
		}
		cfg.Regions[r] = rc
	}
	if limiters != nil {
		cfg.Limiters = limiters
	}
	return pipeline.NewClients(cfg, log)
}

// Limits are the shared Jumio rate limits (per tenant and endpoint class).
type Limits struct {
	AccountRate, RetrievalRate, TokenRate    float64
	AccountBurst, RetrievalBurst, TokenBurst int
	MaxWait                                  time.Duration
	CallbackShare                            float64
	accountRate, retrievalRate, tokenRate    string
	callbackShare                            string
}

// Bind registers the rate-limit settings.
func (l *Limits) Bind(s *config.Set) {
	d := pipeline.DefaultRateLimits()
	s.String(&l.accountRate, "rate-account", "KYCPIPE_RATE_ACCOUNT", "1", "account initiations per second for the whole tenant, shared by all replicas (0: unlimited)")
	s.Int(&l.AccountBurst, "rate-account-burst", "KYCPIPE_RATE_ACCOUNT_BURST", d.Account.Burst, "account initiations allowed at once").Positive()
	s.String(&l.retrievalRate, "rate-retrieval", "KYCPIPE_RATE_RETRIEVAL", "15", "retrieval calls per second for the whole tenant (0: unlimited)")
	s.Int(&l.RetrievalBurst, "rate-retrieval-burst", "KYCPIPE_RATE_RETRIEVAL_BURST", d.Retrieval.Burst, "retrieval calls allowed at once").Positive()
	s.String(&l.tokenRate, "rate-token", "KYCPIPE_RATE_TOKEN", "10", "token calls per second for the whole tenant (0: unlimited)")
	s.Int(&l.TokenBurst, "rate-token-burst", "KYCPIPE_RATE_TOKEN_BURST", d.Token.Burst, "token calls allowed at once").Positive()
	s.Duration(&l.MaxWait, "rate-max-wait", "KYCPIPE_RATE_MAX_WAIT", 20*time.Second, "longest a call waits in place for a permit; longer waits go back on the queue").Positive()
	s.String(&l.callbackShare, "rate-callback-share", "KYCPIPE_RATE_CALLBACK_SHARE", strconv.FormatFloat(pipeline.DefaultCallbackShare, 'f', -1, 64),
		"share of the retrieval rate reserved for retrievals that callbacks trigger, so they never queue behind polls (0: none, one queue)")
}

// Check parses the rates; it names the setting at fault.
func (l *Limits) Check() error {
	for _, r := range []struct {
		s   string
		dst *float64
		env string
	}{{l.accountRate, &l.AccountRate, "KYCPIPE_RATE_ACCOUNT"}, {l.retrievalRate, &l.RetrievalRate, "KYCPIPE_RATE_RETRIEVAL"}, {l.tokenRate, &l.TokenRate, "KYCPIPE_RATE_TOKEN"}} {
		v, err := strconv.ParseFloat(strings.TrimSpace(r.s), 64)
		if err != nil || v < 0 {
			return fmt.Errorf("invalid %s %q: want a non-negative number", r.env, r.s)
		}
		*r.dst = v
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(l.callbackShare), 64)
	if err != nil || v < 0 || v >= 1 {
		return fmt.Errorf("invalid KYCPIPE_RATE_CALLBACK_SHARE %q: want a number from 0 to below 1", l.callbackShare)
	}
	l.CallbackShare = v
	return nil
}

// Build opens the shared limiter (nil when every class is unlimited). Call
// Check first.
func (l *Limits) Build(ctx context.Context, js jetstream.JetStream, t pipeline.Topology, log *zap.Logger, m *pipeline.Metrics) (*pipeline.Limiters, error) {
	limits := pipeline.RateLimits{
		Account:   pipeline.Rate{PerSecond: l.AccountRate, Burst: l.AccountBurst},
		Retrieval: pipeline.Rate{PerSecond: l.RetrievalRate, Burst: l.RetrievalBurst},
		Token:     pipeline.Rate{PerSecond: l.TokenRate, Burst: l.TokenBurst},
		MaxWait:   l.MaxWait,
	}
	limits.CallbackShare = l.CallbackShare
	if limits.CallbackShare == 0 {
		limits.CallbackShare = -1 // none: one queue
	}
	if !limits.Enabled() {
		return nil, nil
	}
	return pipeline.NewLimiters(ctx, js, t, limits, log, m)
}

// Retry are the backoff settings of workers and retrievers.
type Retry struct {
	Initial, Max time.Duration
}

// Bind registers the retry settings.
func (r *Retry) Bind(s *config.Set) {
	s.Duration(&r.Initial, "retry-backoff", "KYCPIPE_RETRY_BACKOFF", time.Second, "first retry delay after a Jumio failure (doubles up to --retry-backoff-max, ±20%); a retried call also waits for its rate limit, so account retries are at least 1/--rate-account apart once --rate-account-burst is used").Positive()
	s.Duration(&r.Max, "retry-backoff-max", "KYCPIPE_RETRY_BACKOFF_MAX", 5*time.Minute, "longest retry delay").Positive()
}

// Backoff returns the policy.
func (r *Retry) Backoff() pipeline.Backoff { return pipeline.Backoff{Initial: r.Initial, Max: r.Max} }

// NewRegistry returns a Prometheus registry with the Go and process
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Main runs a binary's run function with a context canceled on SIGINT or
// SIGTERM, and exits non-zero with the error on failure.
func Main(name string, run func(ctx context.Context, args []string, getenv func(string) string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// ParseSchedule parses a comma-separated list of durations.
func ParseSchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	var last time.Duration
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("invalid duration %q", part)
		}
		if d <= last {
			return nil, errors.New("offsets must increase (they are cumulative, like 40s,60s,100s)")
		}
		last = d
		out = append(out, d)
	}
	return out, nil
}

// Build opens the shared rate limiter and builds the per-region Jumio
// clients, traced and observed by env's metrics. Call Check and
// limits.Check first.
func (j *Jumio) Build(ctx context.Context, env *Env, region jumio.Region, limits *Limits) (*pipeline.Clients, error) {
	limiters, err := limits.Build(ctx, env.JS, env.Topology, env.Log, env.Metrics)
	if err != nil {
		return nil, err
	}
	j.TracerProvider = env.Tracer
	return j.Clients(region, env.Log, env.Metrics.JumioObserver(), limiters)
}
