package jumiotest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"hash"
	"mime"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// oauthToken is an access token a region's token endpoint minted.
type oauthToken struct {
	token    string
	clientID string
	region   jumio.Region
	expiry   time.Time // the exp claim: the token is valid strictly before it
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// handleToken is POST /oauth2/token: Basic client authentication and
// grant_type=client_credentials in a form body.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request",
			ErrorDescription: "Content-Type must be application/x-www-form-urlencoded"})
		return
	}
	region := s.regionOf(r)
	id, secret, ok := r.BasicAuth()
	s.mu.Lock()
	client, known := s.clients[id]
	status := s.sw.badClientStatus()
	s.mu.Unlock()
	// A client of another region's tenant is unknown here.
	if !ok || !known || client.Region != region || subtle.ConstantTimeCompare([]byte(secret), []byte(client.Secret)) != 1 {
		// Jumio: "Calls with missing, incorrect or suspicious headers or
		// parameter values will result in HTTP status code 400 Bad Request
		// Error or 403 Forbidden" (Authorization page). The body is
		// RFC 6749's, as the Cognito-style auth host probably answers.
		s.refuse(RefusalBadClient)
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="jumio"`)
		}
		writeJSON(w, status, oauthError{Error: "invalid_client"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "unsupported_grant_type"})
		return
	}

	s.mu.Lock()
	now := s.now()
	tok := s.current[id]
	minted := false
	if tok == nil || s.opts.TokenReuseMin < 0 || tok.expiry.Sub(now) < s.opts.TokenReuseMin {
		iat := now.Unix()
		exp := iat + int64(s.opts.TokenTTL/time.Second)
		tok = &oauthToken{clientID: id, region: region, expiry: time.Unix(exp, 0)}
		tok.token = s.signJWT(sha256.New, "HS256", map[string]any{
			"iss": "jumiotest/" + string(region), "sub": id, "client_id": id, "token_use": "access",
			"iat": iat, "exp": exp, "jti": newUUID(),
		})
		s.oauth[tok.token] = tok
		s.current[id] = tok
		minted = true
	}
	s.mu.Unlock()
	if minted {
		s.stat(func(st *Stats) { st.TokensIssued++ })
		s.log.Debug("access token minted", zap.String("client_id", id), zap.String("region", string(region)),
			zap.Time("expires_at", tok.expiry))
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: tok.token,
		ExpiresIn:   int64(s.opts.TokenTTL / time.Second),
		TokenType:   "Bearer",
	})
}

// signJWT returns a JWT with claims, signed with the server's random key.
func (s *Server) signJWT(h func() hash.Hash, alg string, claims map[string]any) string {
	header, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	return s.signParts(h, base64.RawURLEncoding.EncodeToString(header), payload)
}

// signParts signs an encoded JWT header and a payload.
func (s *Server) signParts(h func() hash.Hash, header string, payload []byte) string {
	enc := base64.RawURLEncoding
	signing := make([]byte, 0, len(header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(h().Size()))
	signing = append(append(signing, header...), '.')
	signing = enc.AppendEncode(signing, payload)
	mac := hmac.New(h, s.jwtKey)
	mac.Write(signing)
	return string(enc.AppendEncode(append(signing, '.'), mac.Sum(nil)))
}

// hs512Header is the encoded header of every transaction token.
var hs512Header = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS512","typ":"JWT"}`))

// transactionToken mints a JWT-shaped transaction (api) token, like the
// HS512 tokens Jumio returns. Its claims are written directly, as
// json.Marshal writes a map of them (keys in order; kind is a constant and
// the IDs are the simulator's UUIDs, which need no escaping): one is minted
// per execution and channel, on the simulator's hot path.
func (s *Server) transactionToken(kind, accountID, executionID string, iat, exp time.Time) string {
	p := make([]byte, 0, 192)
	p = append(append(append(p, `{"acc":"`...), accountID...), `","exp":`...)
	p = append(strconv.AppendInt(p, exp.Unix(), 10), `,"iat":`...)
	p = append(strconv.AppendInt(p, iat.Unix(), 10), `,"jti":"`...)
	p = append(append(append(append(append(append(p, newUUID()...), `","typ":"`...), kind...), `","wfe":"`...), executionID...), `"}`...)
	return s.signParts(sha512.New, hs512Header, p)
}

type permission int

const (
	permInitiate permission = iota
	permRetrieve
	permDelete
)

// authorizeOAuth checks the OAuth2 bearer token of account, retrieval and
// deletion calls: a live token of this region's tenant, whose client has
// the permission. On failure it answers and returns false.
func (s *Server) authorizeOAuth(w http.ResponseWriter, r *http.Request, perm permission) bool {
	tok := bearerToken(r)
	if tok == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeProblem(w, http.StatusUnauthorized, "Full authentication is required to access this resource")
		return false
	}
	region := s.regionOf(r)
	s.mu.Lock()
	t := s.oauth[tok]
	now := s.now()
	var c ClientCredentials
	if t != nil {
		c = s.clients[t.clientID]
	}
	s.mu.Unlock()
	switch {
	case t == nil:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, "The access token is invalid")
		return false
	case t.region != region:
		s.refuse(RefusalWrongRegion)
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, "The access token is invalid")
		return false
	case !now.Before(t.expiry):
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, "The access token has expired")
		return false
	}
	var detail string
	switch {
	case perm == permInitiate && c.DenyInitiate:
		detail = "The client is not allowed to initiate transactions"
	case perm == permRetrieve && c.DenyRetrieve:
		detail = "The client is not allowed to retrieve transactions"
	case perm == permDelete && c.DenyDelete:
		detail = "The client is not allowed to delete transactions"
	default:
		return true
	}
	s.refuse(RefusalPermission)
	writeProblem(w, http.StatusForbidden, detail)
	return false
}
