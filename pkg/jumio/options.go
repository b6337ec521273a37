package jumio

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Option configures a [Client]. Options validate their input and make [New]
// fail with an error wrapping [ErrInvalidOption].
type Option func(*Client) error

// DefaultUserAgent is sent when no User-Agent is configured. Jumio asks for
// the company and application name: set one with [WithUserAgent].
const DefaultUserAgent = "kycpipe/dev"

// Defaults.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultRefreshSkew = 5 * time.Minute
	maxResponseSize    = 16 << 20
)

// WithRegion selects the data center (default amer-1). Accepts Jumio's names
// and US, EU, SG through [ParseRegion].
func WithRegion(r Region) Option {
	return func(c *Client) error {
		p, err := ParseRegion(string(r))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
		c.region = p
		return nil
	}
}

// WithBaseURL points every service (auth, account, retrieval) at one base
// URL, such as a simulator or a proxy: the token endpoint becomes
// {base}/oauth2/token, accounts {base}/api/v1/accounts… and retrieval
// {base}/api/v1/accounts/{a}/workflow-executions/{w}…. Per-service options
// given after it override it. Upload and finalize URLs still come from
// Jumio's responses.
func WithBaseURL(base string) Option {
	return func(c *Client) error {
		u, err := checkBaseURL(base)
		if err != nil {
			return err
		}
		c.authURL, c.accountURL, c.retrievalURL = u, u, u
		return nil
	}
}

// WithAuthURL overrides the base URL of the OAuth2 token service.
func WithAuthURL(base string) Option {
	return func(c *Client) (err error) { c.authURL, err = checkBaseURL(base); return }
}

// WithAccountURL overrides the base URL of the account service.
func WithAccountURL(base string) Option {
	return func(c *Client) (err error) { c.accountURL, err = checkBaseURL(base); return }
}

// WithRetrievalURL overrides the base URL of the retrieval service.
func WithRetrievalURL(base string) Option {
	return func(c *Client) (err error) { c.retrievalURL, err = checkBaseURL(base); return }
}

func checkBaseURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: base URL must be an absolute http(s) URL", ErrInvalidOption)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: base URL must not have a query, fragment or user info", ErrInvalidOption)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// WithHTTPClient uses a copy of hc (the caller's client is never modified).
// Its Timeout is kept if set, else [WithTimeout] or the default applies.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return fmt.Errorf("%w: nil HTTP client", ErrInvalidOption)
		}
		cp := *hc
		c.http = &cp
		return nil
	}
}

// WithTimeout bounds each HTTP call (default 30s) when the caller's context
// has no earlier deadline.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout must be greater than 0", ErrInvalidOption)
		}
		c.timeout = d
		return nil
	}
}

// WithUserAgent sets the User-Agent sent on every request. Jumio requires it
// to name your company and application, e.g. "Acme Onboarding/1.4".
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		ua = strings.TrimSpace(ua)
		if ua == "" || strings.ContainsAny(ua, "\r\n") {
			return fmt.Errorf("%w: User-Agent must be a non-empty single line", ErrInvalidOption)
		}
		c.userAgent = ua
		return nil
	}
}

// WithLogger sets the logger (default: none). The client logs token
// refreshes at debug level, with no token or secret.
func WithLogger(l *zap.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		c.log = l
		return nil
	}
}

// WithClock replaces time.Now, for tests of token expiry.
func WithClock(now func() time.Time) Option {
	return func(c *Client) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		c.now = now
		return nil
	}
}

// WithRefreshSkew sets how long before expiry a cached token is replaced
// (default 5m). A token handed out with less life left than twice the skew is
// refreshed when half its remaining life has passed instead.
func WithRefreshSkew(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 {
			return fmt.Errorf("%w: refresh skew must not be negative", ErrInvalidOption)
		}
		c.skew = d
		return nil
	}
}

// WithLimiter makes every call wait for a permit of its [EndpointClass]
// first. See [Limiter].
func WithLimiter(l Limiter) Option {
	return func(c *Client) error {
		if l == nil {
			return fmt.Errorf("%w: nil limiter", ErrInvalidOption)
		}
		c.limiter = l
		return nil
	}
}

// WithObserver registers a function called after every HTTP call to Jumio
// (token calls included), for metrics and tracing. It must be fast and safe
// for concurrent use.
func WithObserver(o Observer) Option {
	return func(c *Client) error {
		if o == nil {
			return fmt.Errorf("%w: nil observer", ErrInvalidOption)
		}
		c.observers = append(c.observers, o)
		return nil
	}
}

// WithTracerProvider records a span around every HTTP call to Jumio
// ("jumio <operation>"), as a child of the caller's span. Jumio is not sent
// any trace context.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Client) error {
		if tp == nil {
			return fmt.Errorf("%w: nil tracer provider", ErrInvalidOption)
		}
		c.tracer = tp.Tracer("github.com/kycpipe/kycpipe/pkg/jumio")
		return nil
	}
}
