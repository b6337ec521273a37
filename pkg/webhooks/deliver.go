package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Delivery defaults.
const (
	// DefaultTimeout bounds one attempt, from resolving the host to reading
	// the response (KYCPIPE_WEBHOOK_TIMEOUT).
	DefaultTimeout = 15 * time.Second
	// DefaultUserAgent is the User-Agent of every delivery.
	DefaultUserAgent = "kycpipe-webhooks/1.0 (+https://github.com/kycpipe/kycpipe)"
	// MaxResponseBody is how much of a response body is read (then
	// discarded); the rest is not read.
	MaxResponseBody = 4 << 10
	// maxIDLength bounds a webhook-id.
	maxIDLength = 256
)

// Class is the outcome of one delivery attempt, what the notifier acts on.
type Class string

// Delivery classes.
const (
	// ClassDelivered: the endpoint answered 2xx. Done.
	ClassDelivered Class = "delivered"
	// ClassGone: the endpoint answered 410 Gone. Disable the endpoint; do
	// not retry.
	ClassGone Class = "gone"
	// ClassRetry: any other answer (3xx: redirects are not followed, 4xx,
	// 5xx), a timeout, a connection or DNS failure, or the caller's context
	// ending. Retry on the [Schedule], honouring Result.RetryAfter.
	ClassRetry Class = "retry"
	// ClassRefused: nothing was sent because kycpipe's own rules forbid it:
	// the URL or one of the host's addresses breaks the [Policy] now (for
	// instance its DNS now points to a private address), or the call itself
	// was invalid (no secret, a bad webhook-id). Result.Err says which; for
	// rule violations it is a *[ValidationError]. Retrying is pointless
	// until the endpoint or its DNS changes.
	ClassRefused Class = "refused"
)

// Result describes one delivery attempt. It never contains the body, the
// secrets or the URL's path and query.
type Result struct {
	Class Class
	// StatusCode is the endpoint's HTTP status, 0 when there was no answer.
	StatusCode int
	// Latency is the attempt's duration, from resolving the host to having
	// read the response.
	Latency time.Duration
	// RetryAfter is the wait the endpoint asked for with Retry-After
	// (seconds or an HTTP date) on a 429 or 503, capped at [MaxRetryAfter];
	// 0 when absent. Pass it to [Schedule.Delay].
	RetryAfter time.Duration
	// Err is why the attempt did not deliver (nil for ClassDelivered): a
	// *[StatusError] for an unsuccessful answer, a *[ValidationError] for a
	// rule violation, an error wrapping [ErrResolve] (DNS failure, including
	// a name that does not exist), context.Canceled or
	// context.DeadlineExceeded, or a network error. Safe to log: it names
	// only the scheme and host.
	Err error
}

// StatusError is an answer that was not 2xx.
type StatusError struct {
	StatusCode int
}

// Error implements error.
func (e *StatusError) Error() string {
	msg := "webhooks: endpoint answered " + strconv.Itoa(e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		msg += " " + t
	}
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		msg += " (redirects are not followed)"
	}
	return msg
}

// DialFunc opens a network connection, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Option configures a [Deliverer]. Options validate their input and make
// [NewDeliverer] fail with an error wrapping [ErrInvalidOption].
type Option func(*Deliverer) error

// WithTimeout bounds each attempt (default [DefaultTimeout]); d > 0.
func WithTimeout(d time.Duration) Option {
	return func(dl *Deliverer) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout must be greater than 0", ErrInvalidOption)
		}
		dl.timeout = d
		return nil
	}
}

// WithUserAgent replaces [DefaultUserAgent]; it should still name kycpipe.
func WithUserAgent(ua string) Option {
	return func(dl *Deliverer) error {
		if strings.TrimSpace(ua) == "" || strings.ContainsAny(ua, "\r\n\x00") {
			return fmt.Errorf("%w: the user agent must be a non-empty single line", ErrInvalidOption)
		}
		dl.userAgent = ua
		return nil
	}
}

// WithTLSConfig sets the TLS client configuration (for example RootCAs in
// tests or behind a corporate CA). It is cloned; ServerName is always the
// URL's host name.
func WithTLSConfig(c *tls.Config) Option {
	return func(dl *Deliverer) error {
		if c == nil {
			return fmt.Errorf("%w: nil TLS config", ErrInvalidOption)
		}
		dl.tlsConfig = c.Clone()
		dl.tlsConfig.ServerName = ""
		return nil
	}
}

// WithClock sets the clock used for Latency and for Retry-After dates
// (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(dl *Deliverer) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		dl.now = now
		return nil
	}
}

// WithDialer replaces the function that opens TCP connections (default a
// net.Dialer with a 30 s keep-alive). It is only ever called with an
// address the [Policy] has just checked ("ip:port", never a host name);
// tests use it to observe which address was dialed.
func WithDialer(dial DialFunc) Option {
	return func(dl *Deliverer) error {
		if dial == nil {
			return fmt.Errorf("%w: nil dialer", ErrInvalidOption)
		}
		dl.dial = dial
		return nil
	}
}

// Deliverer makes single, signed delivery attempts; it does not retry
// (the notifier's JetStream redelivery is the one retry layer). Build it
// with [NewDeliverer]; it is safe for concurrent use and keeps idle
// connections for reuse (see [Deliverer.CloseIdleConnections]).
type Deliverer struct {
	policy    Policy
	timeout   time.Duration
	userAgent string
	tlsConfig *tls.Config
	now       func() time.Time
	dial      DialFunc
	client    *http.Client
}

// NewDeliverer returns a Deliverer that enforces policy at every attempt.
func NewDeliverer(policy Policy, opts ...Option) (*Deliverer, error) {
	d := &Deliverer{
		policy:    policy,
		timeout:   DefaultTimeout,
		userAgent: DefaultUserAgent,
		tlsConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		now:       time.Now,
		dial:      (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
	}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would dial addresses the policy never saw
		DialContext:            d.dialChecked,
		TLSClientConfig:        d.tlsConfig,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true, // the body is discarded anyway
	}
	d.client = &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is the answer, and a failed attempt
		},
	}
	return d, nil
}

// CloseIdleConnections closes the kept-alive connections (at shutdown).
func (d *Deliverer) CloseIdleConnections() { d.client.CloseIdleConnections() }

// Deliver makes one attempt to POST body to endpointURL, signed with every
// secret (webhook-signature holds one signature each, for rotations), with
// webhook-id = id and webhook-timestamp = ts (this attempt's time, Unix
// seconds), Content-Type application/json and the Deliverer's User-Agent.
//
// Before anything is sent the URL is checked against the Policy and the
// host resolved once; the connection then goes to exactly one of the
// checked addresses (the TLS server name stays the host name), so a DNS
// answer that changes between check and connect (rebinding) cannot reach a
// refused address. Reused keep-alive connections were dialed to addresses
// checked when they were opened. Redirects are not followed. At most
// [MaxResponseBody] bytes of the response are read and discarded. The
// attempt is bounded by the timeout and by ctx.
//
// The outcome is in Result.Class; Deliver never panics on bad input.
func (d *Deliverer) Deliver(ctx context.Context, endpointURL, id string, ts time.Time, body []byte, secrets []Secret) Result {
	start := d.now()
	res := d.deliver(ctx, endpointURL, id, ts, body, secrets)
	res.Latency = max(d.now().Sub(start), 0)
	return res
}

func (d *Deliverer) deliver(ctx context.Context, endpointURL, id string, ts time.Time, body []byte, secrets []Secret) Result {
	if err := checkID(id); err != nil {
		return Result{Class: ClassRefused, Err: err}
	}
	sig, err := SignatureHeader(secrets, id, ts, body)
	if err != nil {
		return Result{Class: ClassRefused, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	u, addrs, err := d.policy.resolveURL(ctx, endpointURL)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			if !onlyUnresolvable(ve) {
				return Result{Class: ClassRefused, Err: err}
			}
			// A name that does not resolve now may again later (DNS changes,
			// negative caching): a retryable failure, not a rule violation.
			err = fmt.Errorf("%w: the host name does not resolve", ErrResolve)
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", err, ctx.Err())
		}
		return Result{Class: ClassRetry, Err: err}
	}
	ctx = context.WithValue(ctx, targetKey{}, &target{host: u.Hostname(), addrs: addrs})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return Result{Class: ClassRefused, Err: fmt.Errorf("webhooks: build request for %s: %w", redactURL(u), unwrapURLError(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.userAgent)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)

	resp, err := d.client.Do(req)
	if err != nil {
		err = unwrapURLError(err)
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", err, cerr)
		}
		return Result{Class: ClassRetry, Err: fmt.Errorf("webhooks: POST %s: %w", redactURL(u), err)}
	}
	defer resp.Body.Close()
	_, _ = drain(resp.Body)

	res := Result{StatusCode: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		res.Class = ClassDelivered
		return res
	case resp.StatusCode == http.StatusGone:
		res.Class = ClassGone
	default:
		res.Class = ClassRetry
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			res.RetryAfter, _ = ParseRetryAfter(resp.Header.Get("Retry-After"), d.now())
		}
	}
	res.Err = &StatusError{StatusCode: resp.StatusCode}
	return res
}

// drain reads at most MaxResponseBody bytes of r and discards them.
func drain(r io.Reader) (int64, error) {
	return io.Copy(io.Discard, io.LimitReader(r, MaxResponseBody))
}

func onlyUnresolvable(ve *ValidationError) bool {
	for _, f := range ve.Fields {
		if f.Code != CodeUnresolvable {
			return false
		}
	}
	return true
}

// checkID validates a webhook-id: 1 to 256 printable ASCII characters
// without spaces.
func checkID(id string) error {
	if id == "" || len(id) > maxIDLength {
		return fmt.Errorf("webhooks: the webhook-id must be 1 to %d characters", maxIDLength)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("webhooks: the webhook-id must be printable ASCII without spaces")
		}
	}
	return nil
}

// redactURL keeps the scheme and host: paths and queries of webhook URLs
// often carry tokens.
func redactURL(u *url.URL) string { return u.Scheme + "://" + u.Host }

// unwrapURLError drops the *url.Error layer, whose message repeats the
// full URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// targetKey carries the checked addresses from Deliver to dialChecked.
type targetKey struct{}

type target struct {
	host  string
	addrs []netip.Addr
}

// errUncheckedDial: the transport wanted to dial something Deliver did not
// check (it cannot happen without a redirect or a proxy, which are off).
var errUncheckedDial = errors.New("webhooks: refusing to dial an address that was not checked")

// dialChecked is the transport's DialContext: it connects only to the
// addresses Deliver checked for this host, in order, and never resolves.
func (d *Deliverer) dialChecked(ctx context.Context, network, address string) (net.Conn, error) {
	t, ok := ctx.Value(targetKey{}).(*target)
	if !ok || len(t.addrs) == 0 {
		return nil, errUncheckedDial
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil || !strings.EqualFold(host, t.host) {
		return nil, errUncheckedDial
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, errUncheckedDial
	}
	var errs []error
	for _, a := range t.addrs {
		c, err := d.dial(ctx, network, netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
