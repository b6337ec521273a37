package jumio

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// tokenResponse is the OAuth2 token endpoint's answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// tokenSource caches one OAuth2 access token. At most one refresh runs at a
// time: callers that arrive during a refresh wait for it (or for their own
// context). The refresh itself runs on a context detached from the caller's
// cancellation, so one caller giving up does not fail the others.
type tokenSource struct {
	c *Client

	mu        sync.Mutex
	tok       string
	expiry    time.Time     // when Jumio stops accepting tok
	refreshAt time.Time     // when to fetch a new one
	inflight  *tokenRefresh // non-nil while a refresh runs
}

type tokenRefresh struct {
	done chan struct{}
	tok  string
	err  error
}

// token returns a valid access token, fetching one if the cached token is
// missing or due for refresh.
func (ts *tokenSource) token(ctx context.Context) (string, error) {
	ts.mu.Lock()
	if ts.tok != "" && ts.c.now().Before(ts.refreshAt) {
		tok := ts.tok
		ts.mu.Unlock()
		return tok, nil
	}
	r := ts.inflight
	if r == nil {
		r = &tokenRefresh{done: make(chan struct{})}
		ts.inflight = r
		go ts.refresh(context.WithoutCancel(ctx), r)
	}
	ts.mu.Unlock()

	select {
	case <-r.done:
		return r.tok, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("jumio: %s: %w", opToken, ctx.Err())
	}
}

// invalidate forgets tok if it is still the cached token, so the next call
// fetches a new one. A token another goroutine already replaced is kept.
func (ts *tokenSource) invalidate(tok string) {
	ts.mu.Lock()
	if ts.tok == tok {
		ts.tok = ""
	}
	ts.mu.Unlock()
}

func (ts *tokenSource) refresh(ctx context.Context, r *tokenRefresh) {
	ctx, cancel := context.WithTimeout(ctx, ts.c.timeout)
	defer cancel()
	tok, expiry, err := ts.c.fetchToken(ctx)

	ts.mu.Lock()
	if err == nil {
		now := ts.c.now()
		ts.tok, ts.expiry = tok, expiry
		ts.refreshAt = refreshTime(now, expiry, ts.c.skew)
		ts.c.log.Debug("jumio: token refreshed",
			zap.String("region", string(ts.c.region)),
			zap.Time("expires_at", expiry),
			zap.Time("refresh_at", ts.refreshAt))
	}
	r.tok, r.err = tok, err
	ts.inflight = nil
	ts.mu.Unlock()
	close(r.done)
}

// refreshTime is when a token valid until expiry should be replaced: skew
// before expiry, or, for a token with less than twice the skew left (Jumio
// may hand back its cached token), halfway through the remaining life.
func refreshTime(now, expiry time.Time, skew time.Duration) time.Time {
	left := expiry.Sub(now)
	if left <= 0 {
		return now
	}
	if left < 2*skew {
		return now.Add(left / 2)
	}
	return expiry.Add(-skew)
}

// fetchToken calls the token endpoint: Basic auth with the client
// credentials, grant_type=client_credentials.
func (c *Client) fetchToken(ctx context.Context) (string, time.Time, error) {
	if err := c.wait(ctx, opToken); err != nil {
		return "", time.Time{}, err
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := c.newRequest(ctx, opToken, http.MethodPost, c.authURL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.creds.ClientID, c.creds.ClientSecret)
	var tr tokenResponse
	if err := c.do(req, opToken, &tr); err != nil {
		return "", time.Time{}, err
	}
	if tr.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("jumio: %s: %w: no access_token", opToken, ErrInvalidResponse)
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return "", time.Time{}, fmt.Errorf("jumio: %s: %w: token_type is not Bearer", opToken, ErrInvalidResponse)
	}
	now := c.now()
	expiry := now.Add(time.Duration(tr.ExpiresIn) * time.Second)
	if tr.ExpiresIn <= 0 {
		expiry = now.Add(time.Hour) // Jumio's documented default
	}
	// Jumio may return a cached token with less life left than expires_in
	// says; the JWT's exp claim is the truth when present.
	if exp, ok := jwtExpiry(tr.AccessToken); ok && exp.Before(expiry) {
		expiry = exp
	}
	return tr.AccessToken, expiry, nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it (the token
// came from Jumio over TLS; we only need to know when it stops working).
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == "" {
		return time.Time{}, false
	}
	secs, err := claims.Exp.Float64()
	if err != nil || secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(secs), 0), true
}

// AccessToken returns the cached OAuth2 access token, fetching a new one if
// it is missing or due for refresh. It is exposed for calling Jumio
// endpoints this package does not wrap; the token is a secret.
func (c *Client) AccessToken(ctx context.Context) (string, error) {
	return c.tokens.token(ctx)
}
