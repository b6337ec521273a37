package pipeline

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// JumioConfig says how to reach Jumio: credentials, base URLs and the
// User-Agent (DESIGN 3.5: JUMIO_*).
type JumioConfig struct {
	// Credentials are the default client credentials (JUMIO_CLIENT_ID,
	// JUMIO_CLIENT_SECRET), for every region without its own.
	Credentials   jumio.Credentials
	DefaultRegion jumio.Region
	BaseURL       string // one URL for every service (simulator, proxy)
	AuthURL       string
	AccountURL    string
	RetrievalURL  string
	// Regions overrides the credentials and the base URL of single regions
	// (JUMIO_CLIENT_ID_<REGION>, JUMIO_CLIENT_SECRET_<REGION>,
	// JUMIO_BASE_URL_<REGION>): each Jumio data center is its own
	// deployment with its own portal and credentials (DESIGN 3.5).
	Regions map[jumio.Region]RegionConfig
	// CredentialSettings names the settings of the default credentials in
	// operators' messages (default "JUMIO_CLIENT_ID / JUMIO_CLIENT_SECRET").
	CredentialSettings string
	UserAgent          string
	Timeout            time.Duration
	HTTPClient         *http.Client
	Limiter            jumio.Limiter
	Observer           jumio.Observer
	// TracerProvider records a span per Jumio call (default: none).
	TracerProvider trace.TracerProvider
	// Limiters, when set, paces each region's client with that region's
	// shared limiter and feeds Jumio's 429s back to it.
	Limiters *Limiters
	Clock    func() time.Time
}

// RegionConfig overrides the Jumio settings of one region. Zero fields
// keep the defaults of [JumioConfig].
type RegionConfig struct {
	// Credentials of the region's own OAuth2 client.
	Credentials jumio.Credentials
	// BaseURL serves every Jumio service of the region (a simulator's
	// Server.RegionURL, a proxy); it takes precedence over JumioConfig's
	// BaseURL and per-service URLs for this region.
	BaseURL string
	// CredentialSettings names the settings Credentials come from, for
	// operators' messages (e.g. "JUMIO_CLIENT_ID_EMEA_1 /
	// JUMIO_CLIENT_SECRET_EMEA_1").
	CredentialSettings string
}

// ErrNoCredentials is wrapped by the errors of [Clients.For] for a region
// that has neither its own credentials nor the default ones.
var ErrNoCredentials = errors.New("pipeline: no Jumio credentials for the region")

// Clients hands out one jumio.Client per region, created on first use, so
// each process holds one cached OAuth token per region. Each region is one
// credential set: its own client, token and hosts.
type Clients struct {
	cfg JumioConfig
	log *zap.Logger

	mu       sync.Mutex
	byRegion map[jumio.Region]*jumio.Client
}

// NewClients validates cfg by building the default region's client and the
// client of every region with its own settings.
func NewClients(cfg JumioConfig, log *zap.Logger) (*Clients, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = jumio.DefaultRegion
	}
	for r := range cfg.Regions {
		if !r.Valid() {
			return nil, fmt.Errorf("%w: unknown Jumio region %q", ErrInvalidConfig, r)
		}
	}
	c := &Clients{cfg: cfg, log: log, byRegion: map[jumio.Region]*jumio.Client{}}
	for _, r := range c.configured() {
		if _, err := c.For(string(r)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// configured lists the default region and every region with its own
// settings.
func (c *Clients) configured() []jumio.Region {
	out := []jumio.Region{c.cfg.DefaultRegion}
	for _, r := range jumio.Regions {
		if _, ok := c.cfg.Regions[r]; ok && r != c.cfg.DefaultRegion {
			out = append(out, r)
		}
	}
	return out
}

// DefaultRegion returns the region used for jobs that name none.
func (c *Clients) DefaultRegion() jumio.Region { return c.cfg.DefaultRegion }

// Regions lists the regions this process serves, in Jumio's order: the
// default region, every region with its own settings, and every region a
// job has named so far.
func (c *Clients) Regions() []jumio.Region {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []jumio.Region
	for _, r := range jumio.Regions {
		if _, ok := c.byRegion[r]; ok {
			out = append(out, r)
		}
	}
	return out
}

// For returns the client of a region ("" = the default region).
func (c *Clients) For(region string) (*jumio.Client, error) {
	r, err := c.region(region)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.byRegion[r]; ok {
		return cl, nil
	}
	cl, err := c.build(r)
	if err != nil {
		return nil, err
	}
	c.byRegion[r] = cl
	return cl, nil
}

func (c *Clients) region(region string) (jumio.Region, error) {
	if region == "" {
		return c.cfg.DefaultRegion, nil
	}
	return jumio.ParseRegion(region)
}

// CredentialSettings names the settings the credentials of region come
// from, for operators' messages.
func (c *Clients) CredentialSettings(r jumio.Region) string {
	if rc, ok := c.cfg.Regions[r]; ok && rc.Credentials.ClientID != "" {
		if rc.CredentialSettings != "" {
			return rc.CredentialSettings
		}
		return "the " + string(r) + " client ID and secret"
	}
	if c.cfg.CredentialSettings != "" {
		return c.cfg.CredentialSettings
	}
	return "JUMIO_CLIENT_ID / JUMIO_CLIENT_SECRET"
}

// build creates a client of region r: the configured one, or (for probes)
// a fresh one with a token of its own.
func (c *Clients) build(r jumio.Region) (*jumio.Client, error) {
	creds := c.cfg.Credentials
	rc, hasOwn := c.cfg.Regions[r]
	if hasOwn && rc.Credentials.ClientID != "" {
		creds = rc.Credentials
	}
	if creds.ClientID == "" || creds.ClientSecret == "" {
		return nil, fmt.Errorf("%w: %s: set %s", ErrNoCredentials, r, c.CredentialSettings(r))
	}
	opts := []jumio.Option{jumio.WithRegion(r), jumio.WithLogger(c.log.Named("jumio"))}
	if hasOwn && rc.BaseURL != "" {
		// The region's own URL serves all its services.
		opts = append(opts, jumio.WithBaseURL(rc.BaseURL))
	} else {
		if c.cfg.BaseURL != "" {
			opts = append(opts, jumio.WithBaseURL(c.cfg.BaseURL))
		}
		for _, o := range []struct {
			url string
			opt func(string) jumio.Option
		}{{c.cfg.AuthURL, jumio.WithAuthURL}, {c.cfg.AccountURL, jumio.WithAccountURL}, {c.cfg.RetrievalURL, jumio.WithRetrievalURL}} {
			if o.url != "" {
				opts = append(opts, o.opt(o.url))
			}
		}
	}
	if c.cfg.UserAgent != "" {
		opts = append(opts, jumio.WithUserAgent(c.cfg.UserAgent))
	}
	if c.cfg.Timeout > 0 {
		opts = append(opts, jumio.WithTimeout(c.cfg.Timeout))
	}
	if c.cfg.HTTPClient != nil {
		opts = append(opts, jumio.WithHTTPClient(c.cfg.HTTPClient))
	}
	lim := c.cfg.Limiter
	if c.cfg.Limiters != nil {
		l := c.cfg.Limiters.For(r)
		lim = l
		opts = append(opts, jumio.WithObserver(l.Observe))
	}
	// Every call also passes its job's erasure guard (erasureguard.go).
	opts = append(opts, jumio.WithLimiter(guardedLimiter{inner: lim}))
	if c.cfg.Observer != nil {
		opts = append(opts, jumio.WithObserver(c.cfg.Observer))
	}
	if c.cfg.TracerProvider != nil {
		opts = append(opts, jumio.WithTracerProvider(c.cfg.TracerProvider))
	}
	if c.cfg.Clock != nil {
		opts = append(opts, jumio.WithClock(c.cfg.Clock))
	}
	cl, err := jumio.New(creds, opts...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: jumio client for %s: %w", r, err)
	}
	return cl, nil
}

// Fresh returns a new client of region with an empty token cache: its
// first call requests a token of its own. Probes use it, so that a refusal
// they see was made with a fresh token.
func (c *Clients) Fresh(region string) (*jumio.Client, error) {
	r, err := c.region(region)
	if err != nil {
		return nil, err
	}
	return c.build(r)
}

// probeID returns a random UUID (v4) that names no account or execution.
func probeID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
