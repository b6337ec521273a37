package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// config is what the command line asks for.
type config struct {
	opts      jumiotest.Options
	faults    []jumiotest.RouteFault
	logFormat string
	// cpuProfile, when set, is a file the CPU profile is written to until
	// shutdown (performance work on the simulator).
	cpuProfile string
}

const usageHeader = `jumiosim runs the Jumio platform API simulator (package jumiotest) as a
standalone server, for demos and out-of-process tests. It refuses what the
real Jumio refuses (docs/JUMIO.md lists every rule and its source); the
-allow-* flags and the control API (POST /_sim/switches) relax the rules.

Every region's services are served under {URL}/regions/{region}; the root
URL serves -default-region. Point kycpipe at a region with
JUMIO_BASE_URL={URL}/regions/emea-1 (or at the root for the default region).

Outcomes: a processed execution's decision follows markers found (case
insensitively) in its customerInternalReference, userReference or
prepared-data email, first match wins:
  notexec  NOT_EXECUTED (score -1)
  reject   REJECTED (score 90): similarity NO_MATCH, email/phone HIGH_RISK,
           standalone screening WARNING/ALERT
  warn     WARNING (score 50): imageChecks REPEATED_FACE, email/phone MEDIUM_RISK
  alert    PASSED (score 10) with watchlistScreening WARNING/ALERT and
           searchResults > 0 (standalone screening, workflow 10010, or 10013)
  (none)   PASSED (score 10)
POST /_sim/outcomes scripts one customerInternalReference instead.

Flags:
`

// parseFlags parses the command line. It returns flag.ErrHelp after
// printing the help for -h.
func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	o := &c.opts
	cb, sw := &o.Callbacks, &o.Switches
	fs := flag.NewFlagSet("jumiosim", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, usageHeader)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8090", "listen address")
	region := fs.String("default-region", string(jumio.DefaultRegion), "region served at the root URL (amer-1, emea-1, apac-1)")
	id := fs.String("client-id", jumiotest.DefaultClientID, "OAuth2 client ID of amer-1's tenant")
	secret := fs.String("client-secret", jumiotest.DefaultClientSecret, "OAuth2 client secret of amer-1's tenant")
	emeaID := fs.String("client-id-emea-1", jumiotest.DefaultClientID+"-emea-1", "OAuth2 client ID of emea-1's tenant")
	emeaSecret := fs.String("client-secret-emea-1", jumiotest.DefaultClientSecret+"-emea-1", "OAuth2 client secret of emea-1's tenant")
	apacID := fs.String("client-id-apac-1", jumiotest.DefaultClientID+"-apac-1", "OAuth2 client ID of apac-1's tenant")
	apacSecret := fs.String("client-secret-apac-1", jumiotest.DefaultClientSecret+"-apac-1", "OAuth2 client secret of apac-1's tenant")
	deny := fs.String("deny", "", "permissions every client lacks (403 on those calls), comma-separated: initiate, retrieve, delete")
	fs.DurationVar(&o.TokenTTL, "token-ttl", jumiotest.DefaultTokenTTL, "access token lifetime")
	fs.DurationVar(&o.TokenReuseMin, "token-reuse-min", jumiotest.DefaultTokenReuseMin, "hand back the current token while it has this much life left (negative: always mint)")
	rateLimits := fs.Bool("rate-limits", false, "enable Jumio's default per-tenant rate limits")
	accountRPS := fs.Float64("account-rps", 0, "account calls per second and tenant (enables rate limits)")
	accountBurst := fs.Int("account-burst", 0, "account call burst")
	retrievalRPS := fs.Float64("retrieval-rps", 0, "retrieval calls per second and tenant (enables rate limits)")
	tokenRPS := fs.Float64("token-rps", 0, "token calls per second and tenant (enables rate limits)")
	latency := fs.String("latency", "", "added latency per route, e.g. details=200ms,token=1s")
	fail := fs.String("fail", "", "faults for the first requests per route, e.g. create_account=3:500,status=1:503")
	fs.DurationVar(&cb.Delay, "callback-delay", 0, "delay before each callback delivery")
	fs.IntVar(&cb.DropFirst, "callback-drop-first", 0, "drop the first N callbacks")
	fs.Float64Var(&cb.DropRate, "callback-drop-rate", 0, "probability of dropping a callback (0..1)")
	fs.IntVar(&cb.Duplicates, "callback-duplicates", 0, "extra copies of every callback")
	fs.BoolVar(&cb.Reorder, "callback-reorder", false, "deliver an execution's callbacks in reverse order")
	fs.BoolVar(&cb.Intermediate, "callback-intermediate", false, "also send ACQUISITION_STARTED and ACQUIRED callbacks")
	fs.IntVar(&cb.Retries, "callback-retries", 0, "re-deliveries after a failed callback")
	fs.DurationVar(&o.ProcessingDelay, "processing-delay", 0, "time from ACQUIRED to PROCESSED")
	fs.DurationVar(&o.RetrievableDelay, "retrievable-delay", 0, "after PROCESSED, details answer 404 for this long")
	fs.DurationVar(&o.AutoCompleteWeb, "auto-complete-web", 0, "complete WEB/SDK executions this long after creation (0: off)")
	fs.StringVar(&o.DefaultCallbackURL, "default-callback-url", "", "callback URL for requests without callbackUrl")
	fs.Int64Var(&o.MaxUploadSize, "max-upload-size", jumiotest.DefaultMaxUploadSize, "largest image accepted, in bytes (Jumio: 15 MB)")
	fs.Int64Var(&o.Seed, "seed", 0, "seed for random callback drops")
	fs.IntVar(&o.MaxExecutions, "max-executions", 0, "keep at most this many workflow executions in memory, forgetting the oldest ended ones (0: keep all; set it for long load tests)")
	// switches
	fs.BoolVar(&sw.StrictCallbackURL, "strict-callback-url", false, "enforce all of Jumio's callbackUrl rules (https, no IP, no port)")
	fs.BoolVar(&sw.AllowMissingUserAgent, "allow-missing-user-agent", false, "accept requests without User-Agent")
	blocked := fs.String("blocked-user-agents", "", "User-Agent values refused with 403, comma-separated; a trailing * matches a prefix (e.g. Go-http-client/*)")
	fs.BoolVar(&sw.AllowMissingConsent, "allow-missing-consent", false, "accept ID and selfie uploads without userConsent in the account request")
	fs.BoolVar(&sw.AllowMissingCountryAndType, "allow-missing-country-type", false, "let usability pass for API IDs without country and ID type in the account request")
	fs.BoolVar(&sw.AllowChunkedUploads, "allow-chunked-uploads", false, "accept credential uploads without Content-Length")
	fs.BoolVar(&sw.OmitWebHref, "omit-web-href", false, "leave web.href out of account responses (tenant without the portal's domain setting)")
	fs.BoolVar(&sw.LongExecutionHref, "long-execution-href", false, "callbacks and status carry .../accounts/{a}/workflow-executions/{w} instead of the short href")
	fs.BoolVar(&sw.ExpiredAsRejected, "expired-as-rejected", false, "2023 mode: expired executions are REJECTED / 100 instead of NOT_EXECUTED / -1")
	fs.BoolVar(&sw.PreparedDataStartsSession, "prepared-data-starts-session", false, "a prepared-data upload starts the session on WEB/SDK workflows too")
	fs.IntVar(&sw.BadClientStatus, "bad-client-status", 400, "token endpoint status for bad client credentials: 400 or 403 (Jumio), or 401")
	fs.StringVar(&c.logFormat, "log-format", "console", "log format: json or console")
	fs.StringVar(&c.cpuProfile, "cpu-profile", "", "write a CPU profile (pprof) to this file from start to shutdown")
	if err := fs.Parse(args); err != nil {
		return c, err
	}

	o.DefaultRegion = jumio.Region(*region)
	o.Clients = []jumiotest.ClientCredentials{
		{ID: *id, Secret: *secret, Region: jumio.RegionAMER},
		{ID: *emeaID, Secret: *emeaSecret, Region: jumio.RegionEMEA},
		{ID: *apacID, Secret: *apacSecret, Region: jumio.RegionAPAC},
	}
	for p := range strings.SplitSeq(*deny, ",") {
		for i := range o.Clients {
			switch strings.TrimSpace(p) {
			case "":
			case "initiate":
				o.Clients[i].DenyInitiate = true
			case "retrieve":
				o.Clients[i].DenyRetrieve = true
			case "delete":
				o.Clients[i].DenyDelete = true
			default:
				return c, fmt.Errorf("-deny: %q is not initiate, retrieve or delete", p)
			}
		}
	}
	for ua := range strings.SplitSeq(*blocked, ",") {
		if ua = strings.TrimSpace(ua); ua != "" {
			sw.BlockedUserAgents = append(sw.BlockedUserAgents, ua)
		}
	}
	if *rateLimits || *accountRPS > 0 || *accountBurst > 0 || *retrievalRPS > 0 || *tokenRPS > 0 {
		o.RateLimits = jumiotest.DefaultRateLimits()
		setIf(&o.RateLimits.AccountPerSecond, *accountRPS)
		setIf(&o.RateLimits.AccountBurst, *accountBurst)
		setIf(&o.RateLimits.RetrievalPerSecond, *retrievalRPS)
		setIf(&o.RateLimits.TokenPerSecond, *tokenRPS)
	}
	var err error
	if o.Latency, err = jumiotest.ParseLatencies(*latency); err != nil {
		return c, fmt.Errorf("-latency: %w", err)
	}
	if c.faults, err = jumiotest.ParseFaults(*fail); err != nil {
		return c, fmt.Errorf("-fail: %w", err)
	}
	return c, nil
}

func setIf[T int | float64](dst *T, v T) {
	if v > 0 {
		*dst = v
	}
}
