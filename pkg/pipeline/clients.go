package pipeline

import (
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
	Credentials   jumio.Credentials
	DefaultRegion jumio.Region
	BaseURL       string // one URL for every service (simulator, proxy)
	AuthURL       string
	AccountURL    string
	RetrievalURL  string
	UserAgent     string
	Timeout       time.Duration
	HTTPClient    *http.Client
	Limiter       jumio.Limiter
	Observer      jumio.Observer
	// TracerProvider records a span per Jumio call (default: none).
	TracerProvider trace.TracerProvider
	// Limiters, when set, paces each region's client with that region's
	// shared limiter and feeds Jumio's 429s back to it.
	Limiters *Limiters
	Clock    func() time.Time
}

// Clients hands out one jumio.Client per region, created on first use, so
// each process holds one cached OAuth token per region.
type Clients struct {
	cfg JumioConfig
	log *zap.Logger

	mu       sync.Mutex
	byRegion map[jumio.Region]*jumio.Client
}

// NewClients validates cfg by building the default region's client.
func NewClients(cfg JumioConfig, log *zap.Logger) (*Clients, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = jumio.DefaultRegion
	}
	c := &Clients{cfg: cfg, log: log, byRegion: map[jumio.Region]*jumio.Client{}}
	if _, err := c.For(string(cfg.DefaultRegion)); err != nil {
		return nil, err
	}
	return c, nil
}

// DefaultRegion returns the region used for jobs that name none.
func (c *Clients) DefaultRegion() jumio.Region { return c.cfg.DefaultRegion }

// For returns the client of a region ("" = the default region).
func (c *Clients) For(region string) (*jumio.Client, error) {
	r := c.cfg.DefaultRegion
	if region != "" {
		var err error
		if r, err = jumio.ParseRegion(region); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.byRegion[r]; ok {
		return cl, nil
	}
	opts := []jumio.Option{jumio.WithRegion(r), jumio.WithLogger(c.log.Named("jumio"))}
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
	if c.cfg.UserAgent != "" {
		opts = append(opts, jumio.WithUserAgent(c.cfg.UserAgent))
	}
	if c.cfg.Timeout > 0 {
		opts = append(opts, jumio.WithTimeout(c.cfg.Timeout))
	}
	if c.cfg.HTTPClient != nil {
		opts = append(opts, jumio.WithHTTPClient(c.cfg.HTTPClient))
	}
	if c.cfg.Limiter != nil {
		opts = append(opts, jumio.WithLimiter(c.cfg.Limiter))
	}
	if c.cfg.Limiters != nil {
		l := c.cfg.Limiters.For(r)
		opts = append(opts, jumio.WithLimiter(l), jumio.WithObserver(l.Observe))
	}
	if c.cfg.Observer != nil {
		opts = append(opts, jumio.WithObserver(c.cfg.Observer))
	}
	if c.cfg.TracerProvider != nil {
		opts = append(opts, jumio.WithTracerProvider(c.cfg.TracerProvider))
	}
	if c.cfg.Clock != nil {
		opts = append(opts, jumio.WithClock(c.cfg.Clock))
	}
	cl, err := jumio.New(c.cfg.Credentials, opts...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: jumio client for %s: %w", r, err)
	}
	c.byRegion[r] = cl
	return cl, nil
}
