package jumiotest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrUnknownClient is wrapped by the errors of [Server.SetClient] and
// [Server.SetClientSecret] for a client ID that is not configured.
var ErrUnknownClient = errors.New("jumiotest: unknown OAuth2 client")

// Clients returns the OAuth2 clients as they are now, secrets included, in
// configuration order.
func (s *Server) Clients() []ClientCredentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ClientCredentials, 0, len(s.clientOrder))
	for _, id := range s.clientOrder {
		out = append(out, s.clients[id])
	}
	return out
}

// SetClient replaces the configured client with ID c.ID: its secret and
// permissions (an empty Region keeps the client's region). It applies from
// the next request: a new secret is needed for the next token, while
// tokens already issued stay valid until they expire (as OAuth2 tokens
// do); permissions apply to them at once. It returns an error wrapping
// [ErrUnknownClient], or [ErrInvalidOptions] for an empty secret or an
// unknown region.
func (s *Server) SetClient(c ClientCredentials) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setClientLocked(c)
}

func (s *Server) setClientLocked(c ClientCredentials) error {
	old, ok := s.clients[c.ID]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownClient, c.ID)
	}
	if c.Region == "" {
		c.Region = old.Region
	}
	switch {
	case c.Secret == "":
		return fmt.Errorf("%w: the client secret must not be empty", ErrInvalidOptions)
	case !c.Region.Valid():
		return fmt.Errorf("%w: region must be amer-1, emea-1 or apac-1", ErrInvalidOptions)
	}
	s.clients[c.ID] = c
	return nil
}

// SetClientSecret changes the secret of the client with this ID, as
// [Server.SetClient] does: a test can start with credentials that do not
// match kycpipe's and then "fix" either side.
func (s *Server) SetClientSecret(id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownClient, id)
	}
	c.Secret = secret
	return s.setClientLocked(c)
}

// ctlClient is POST /_sim/clients/{id}: the fields present in the JSON
// body (secret, region, denyInitiate, denyRetrieve, denyDelete) change,
// the others keep their value. It answers the client.
func (s *Server) ctlClient(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, "The request body is too large")
		return
	}
	status, detail, c := s.updateClient(r.PathValue("id"), b)
	if status != 0 {
		writeProblem(w, status, detail)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// updateClient applies a partial JSON update to client id.
func (s *Server) updateClient(id string, body []byte) (int, string, ClientCredentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return http.StatusNotFound, "No OAuth2 client with this ID", c
	}
	if strings.TrimSpace(string(body)) != "" {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return http.StatusBadRequest, "Invalid JSON body: " + err.Error(), c
		}
	}
	if c.ID != id {
		return http.StatusBadRequest, "id cannot be changed", c
	}
	if err := s.setClientLocked(c); err != nil {
		return http.StatusBadRequest, strings.TrimPrefix(err.Error(), ErrInvalidOptions.Error()+": "), c
	}
	return 0, "", c
}
