package jumio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// Credentials are an OAuth2 client's ID and secret from the Jumio portal.
// Their String and GoString methods hide the secret.
type Credentials struct {
	ClientID     string
	ClientSecret string
}

// String implements fmt.Stringer without revealing the secret.
func (c Credentials) String() string {
	return "jumio.Credentials{ClientID: " + c.ClientID + ", ClientSecret: [redacted]}"
}

// GoString implements fmt.GoStringer without revealing the secret.
func (c Credentials) GoString() string { return c.String() }

// EndpointClass groups Jumio endpoints that share a rate limit.
type EndpointClass string

// Endpoint classes. Jumio limits token calls (10/s), account calls that
// initiate a transaction (about 1/s) and retrieval calls (15/s) per tenant.
const (
	ClassToken      EndpointClass = "token"
	ClassAccount    EndpointClass = "account"
	ClassRetrieval  EndpointClass = "retrieval"
	ClassCredential EndpointClass = "credential" // uploads and finalize: not rate limited by Jumio
)

// Limiter paces calls to Jumio. Wait blocks until a call of class may be
// made, or returns an error: the client returns that error unchanged
// (return a [*ThrottledError] to tell the caller to come back later).
type Limiter interface {
	Wait(ctx context.Context, class EndpointClass) error
}

// CallInfo describes one finished HTTP call to Jumio.
type CallInfo struct {
	Op         string        // operation, e.g. "create account"
	Class      EndpointClass // rate-limit class
	StatusCode int           // HTTP status; 0 when no answer was received
	Duration   time.Duration
	Err        error // nil on 2xx
}

// Observer receives a CallInfo after every HTTP call.
type Observer func(CallInfo)

// Operation names, used in errors, logs and metrics.
const (
	opToken              = "token"
	opCreateAccount      = "create account"
	opUpdateAccount      = "update account"
	opUploadPreparedData = "upload prepared data"
	opUploadPart         = "upload part"
	opFinalize           = "finalize"
	opWorkflowStatus     = "workflow status"
	opWorkflowDetails    = "workflow details"
	opWorkflowSteps      = "workflow steps"
	opDeleteAccount      = "delete account"
	opDeleteExecution    = "delete workflow execution"
)

func classOf(op string) EndpointClass {
	switch op {
	case opToken:
		return ClassToken
	case opCreateAccount, opUpdateAccount:
		return ClassAccount
	case opUploadPreparedData, opUploadPart, opFinalize:
		return ClassCredential
	}
	return ClassRetrieval
}

// Client calls Jumio's platform API in one region. It caches the OAuth2
// token (one refresh in flight at a time) and is safe for concurrent use.
//
// The client never retries on its own, except once after a 401 with a fresh
// token: callers decide with [IsRetryable] and [RetryAfter].
type Client struct {
	creds        Credentials
	region       Region
	authURL      string
	accountURL   string
	retrievalURL string
	http         *http.Client
	timeout      time.Duration
	userAgent    string
	log          *zap.Logger
	now          func() time.Time
	skew         time.Duration
	limiter      Limiter
	observers    []Observer
	tracer       trace.Tracer

	tokens *tokenSource
}

// New returns a client for creds. Without options it talks to the real
// amer-1 hosts with a 30s timeout per call and User-Agent [DefaultUserAgent].
func New(creds Credentials, opts ...Option) (*Client, error) {
	if creds.ClientID == "" || creds.ClientSecret == "" {
		return nil, fmt.Errorf("%w: client ID and secret are required", ErrInvalidOption)
	}
	c := &Client{
		creds:     creds,
		region:    DefaultRegion,
		timeout:   DefaultTimeout,
		userAgent: DefaultUserAgent,
		log:       zap.NewNop(),
		now:       time.Now,
		skew:      DefaultRefreshSkew,
		tracer:    noop.NewTracerProvider().Tracer(""),
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.authURL == "" {
		c.authURL = c.region.BaseURL(ServiceAuth)
	}
	if c.accountURL == "" {
		c.accountURL = c.region.BaseURL(ServiceAccount)
	}
	if c.retrievalURL == "" {
		c.retrievalURL = c.region.BaseURL(ServiceRetrieval)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: defaultTransport()}
	}
	if c.http.Timeout == 0 {
		c.http.Timeout = c.timeout
	}
	// Jumio's URLs never redirect; following one could leak the bearer token.
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.tokens = &tokenSource{c: c}
	return c, nil
}

// defaultTransport is http.DefaultTransport with room to keep connections:
// a pipeline process runs dozens of calls to the same Jumio host at once,
// and the default of 2 idle connections per host made most calls dial (and
// TLS-handshake) a new one.
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}

// Region returns the client's region.
func (c *Client) Region() Region { return c.region }

// newRequest builds a request with the headers Jumio requires on every call.
func (c *Client) newRequest(ctx context.Context, op, method, rawURL string, body io.Reader) (*http.Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("jumio: %s: %w: malformed URL", op, ErrInvalidArgument)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("jumio: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	return req, nil
}

// do sends req and decodes a 2xx JSON body into out (if out is non-nil and
// the body is not empty). Any other status becomes an *APIError; no answer
// becomes a *TransportError (or the context's error).
func (c *Client) do(req *http.Request, op string, out any) (err error) {
	class := classOf(op)
	ctx, span := c.tracer.Start(req.Context(), "jumio "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("jumio.class", string(class)), attribute.String("jumio.region", string(c.region)),
			attribute.String("http.request.method", req.Method), attribute.String("server.address", req.URL.Host)))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	req = req.WithContext(ctx)
	start := c.now()
	resp, err := c.http.Do(req)
	if err != nil {
		err = c.transportError(req.Context(), op, err)
		c.observe(CallInfo{Op: op, Class: class, Duration: c.now().Sub(start), Err: err})
		return err
	}
	defer resp.Body.Close()
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	err = c.readResponse(resp, op, out)
	c.observe(CallInfo{Op: op, Class: class, StatusCode: resp.StatusCode, Duration: c.now().Sub(start), Err: err})
	return err
}

func (c *Client) readResponse(resp *http.Response, op string, out any) error {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return newAPIError(op, resp.StatusCode, resp.Header, body, c.now())
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return c.transportError(resp.Request.Context(), op, err)
	}
	if len(body) > maxResponseSize {
		return fmt.Errorf("jumio: %s: %w: response larger than %d bytes", op, ErrInvalidResponse, maxResponseSize)
	}
	if out == nil || len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok && json.Valid(body) {
		// What json.Unmarshal leaves in a RawMessage, in one pass and
		// without a copy (it checks the body, walks it again, and copies
		// it); an invalid body takes json.Unmarshal for its error.
		*raw = bytes.TrimSpace(body)
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("jumio: %s: %w: %w", op, ErrInvalidResponse, stripJSONValue(err))
	}
	return nil
}

// stripJSONValue keeps a JSON decoding error's kind without echoing values.
func stripJSONValue(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q has JSON type %s, want %s", te.Field, te.Value, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed JSON at offset %d", se.Offset)
	}
	return errors.New("malformed JSON")
}

// transportError turns a failed round trip into a *TransportError without
// the request URL, or the caller's own cancellation.
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The context's error is more useful than the transport's.
		if errors.Is(ctxErr, context.Canceled) {
			return fmt.Errorf("jumio: %s: %w", op, ctxErr)
		}
		return &TransportError{Op: op, Err: ctxErr}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &TransportError{Op: op, Err: err}
}

func (c *Client) observe(ci CallInfo) {
	for _, o := range c.observers {
		o(ci)
	}
}

func (c *Client) wait(ctx context.Context, op string) error {
	if c.limiter == nil {
		return nil
	}
	if err := c.limiter.Wait(ctx, classOf(op)); err != nil {
		var th *ThrottledError
		if errors.As(err, &th) && th.Op == "" {
			th.Op = op
		}
		return err
	}
	return nil
}

func encodeBody(op string, in any) ([]byte, error) {
	if in == nil {
		return nil, nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("jumio: %s: encode request: %w", op, err)
	}
	return b, nil
}

// doOAuth sends a JSON call authorized with the OAuth2 token. After a 401 it
// refreshes the token once and repeats the call once.
func (c *Client) doOAuth(ctx context.Context, op, method, rawURL string, in, out any) error {
	body, err := encodeBody(op, in)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.token(ctx)
		if err != nil {
			return err
		}
		err = c.send(ctx, op, method, rawURL, tok, body, out)
		if attempt == 0 && errors.Is(err, ErrUnauthorized) {
			c.tokens.invalidate(tok)
			c.log.Debug("jumio: 401, refreshing token once", zap.String("op", op), zap.String("region", string(c.region)))
			continue
		}
		return err
	}
}

// doBearer sends a JSON call authorized with a credential's transaction
// token. A 401 is final: the transaction token cannot be refreshed.
func (c *Client) doBearer(ctx context.Context, op, method, rawURL, token string, in, out any) error {
	body, err := encodeBody(op, in)
	if err != nil {
		return err
	}
	return c.send(ctx, op, method, rawURL, token, body, out)
}

func (c *Client) send(ctx context.Context, op, method, rawURL, token string, body []byte, out any) error {
	if err := c.wait(ctx, op); err != nil {
		return err
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := c.newRequest(ctx, op, method, rawURL, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return c.do(req, op, out)
}
