package jumiotest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Switches are the rules and quirks that can change while the server runs:
// set their initial values with Options.Switches, change them with
// [Server.SetSwitches] or POST /_sim/switches. The zero value is Jumio's
// documented (or observed) behaviour: every rule enforced, every quirk as
// Jumio has it. Its JSON form is the control API's.
type Switches struct {
	// AllowMissingUserAgent accepts requests without a User-Agent header.
	// Default false: 403, as Jumio answers missing headers (KYX guide).
	AllowMissingUserAgent bool `json:"allowMissingUserAgent"`
	// BlockedUserAgents are User-Agent values answered with 403, as Jumio
	// answers "suspicious headers" (KYX guide): compared case-insensitively
	// after trimming spaces; a value ending in "*" matches every User-Agent
	// starting with the rest (e.g. "Go-http-client/*"). Default none.
	BlockedUserAgents []string `json:"blockedUserAgents"`
	// StrictCallbackURL enforces every checkable callbackUrl rule of Jumio
	// (https, ASCII, no IP address, no port) with 400. Default false: any
	// absolute http(s) URL of at most 255 characters without a fragment is
	// accepted, so local pipelines can use http://127.0.0.1:port receivers.
	StrictCallbackURL bool `json:"strictCallbackUrl"`
	// AllowMissingConsent accepts uploads of ID and biometric data (parts
	// of ID, SELFIE and FACEMAP credentials) on an execution whose account
	// request carried no valid userConsent.
	// Default false: 403 (jumio-api.md §10.1; the status is a simulator
	// choice, Jumio does not document it).
	AllowMissingConsent bool `json:"allowMissingConsent"`
	// AllowMissingCountryAndType lets usability pass for an ID uploaded over
	// the API although the account request named no country and ID type
	// (workflowDefinition.credentials [{category: ID, country {values}, type
	// {values}}]). Default false: that usability is NOT_EXECUTED /
	// TECHNICAL_ERROR (jumio-api.md §10.2).
	AllowMissingCountryAndType bool `json:"allowMissingCountryAndType"`
	// AllowChunkedUploads accepts credential uploads (images and prepared
	// data) sent without Content-Length. Default false: 403, as Jumio
	// expects Content-Length on every call (jumio-api.md §10.3).
	AllowChunkedUploads bool `json:"allowChunkedUploads"`
	// OmitWebHref leaves web.href out of account responses, as for a tenant
	// without the portal's domain name setting (jumio-api.md §10.4).
	// Default false.
	OmitWebHref bool `json:"omitWebHref"`
	// LongExecutionHref writes workflowExecution.href in callbacks and
	// status answers with the account segment,
	// {base}/api/v1/accounts/{a}/workflow-executions/{id}, as older
	// documentation shows. Default false: the short form
	// {base}/api/v1/workflow-executions/{id} that real callbacks carry
	// (jumio-api.md §10.12); the simulator does not serve that path, so
	// clients must build retrieval URLs from the IDs.
	LongExecutionHref bool `json:"longExecutionHref"`
	// ExpiredAsRejected ("2023 mode") reports executions expiring from now
	// on (TOKEN_EXPIRED, SESSION_EXPIRED) with decision REJECTED / REJECTED
	// / 100, as a real 2023 capture shows. Default false: NOT_EXECUTED with
	// the status as label and score -1, as Jumio documents (§10.9).
	ExpiredAsRejected bool `json:"expiredAsRejected"`
	// PreparedDataStartsSession makes a PREPARED_DATA upload start the
	// acquisition (and its 15-minute session) on workflows with a WEB or SDK
	// channel too. Default false: there the prepared data is submitted
	// before the user starts, and only the user starts the session.
	PreparedDataStartsSession bool `json:"preparedDataStartsSession"`
	// BadClientStatus is the token endpoint's status for bad client
	// credentials (missing, unknown client, wrong secret, another region's
	// client): 400 or 403, which Jumio documents, or 401 (RFC 6749's choice,
	// not Jumio's). Default 0: 400 with {"error":"invalid_client"}.
	BadClientStatus int `json:"badClientStatus"`
}

func (sw Switches) clone() Switches {
	sw.BlockedUserAgents = slices.Clone(sw.BlockedUserAgents)
	return sw
}

func (sw Switches) validate() error {
	switch sw.BadClientStatus {
	case 0, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
	default:
		return errors.New("badClientStatus must be 400, 401 or 403")
	}
	for _, ua := range sw.BlockedUserAgents {
		if strings.TrimSpace(strings.TrimSuffix(ua, "*")) == "" {
			return errors.New("blockedUserAgents must not contain empty values")
		}
	}
	return nil
}

// blocked reports whether ua is one of BlockedUserAgents.
func (sw Switches) blocked(ua string) bool {
	ua = strings.ToLower(strings.TrimSpace(ua))
	for _, b := range sw.BlockedUserAgents {
		b = strings.ToLower(strings.TrimSpace(b))
		if prefix, ok := strings.CutSuffix(b, "*"); ok {
			if strings.HasPrefix(ua, prefix) {
				return true
			}
		} else if ua == b {
			return true
		}
	}
	return false
}

func (sw Switches) badClientStatus() int {
	if sw.BadClientStatus == 0 {
		return http.StatusBadRequest
	}
	return sw.BadClientStatus
}

// Switches returns the current switches.
func (s *Server) Switches() Switches { return s.switches() }

func (s *Server) switches() Switches {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sw.clone()
}

// SetSwitches replaces every switch; they apply to requests from now on.
// It returns an error wrapping [ErrInvalidOptions] for invalid values.
func (s *Server) SetSwitches(sw Switches) error {
	if err := sw.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sw = sw.clone()
	return nil
}

// ctlSwitches is POST /_sim/switches: the fields present in the JSON body
// change, the others keep their value. It answers every switch.
func (s *Server) ctlSwitches(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, "The request body is too large")
		return
	}
	s.mu.Lock()
	sw := s.sw.clone()
	if strings.TrimSpace(string(b)) != "" {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sw); err != nil {
			s.mu.Unlock()
			writeProblem(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
			return
		}
	}
	if err := sw.validate(); err != nil {
		s.mu.Unlock()
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	s.sw = sw
	out := sw.clone()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
