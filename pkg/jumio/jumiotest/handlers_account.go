package jumiotest

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// maxJSONBody bounds JSON request bodies (accounts, prepared data).
const maxJSONBody = 1 << 20

func (s *Server) handleCreateAccount(w http.ResponseWriter, r *http.Request) {
	s.handleAccount(w, r, "")
}

func (s *Server) handleUpdateAccount(w http.ResponseWriter, r *http.Request) {
	s.handleAccount(w, r, r.PathValue("accountId"))
}

// handleAccount creates an account (accountID == "") or a new workflow
// execution on an existing account.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request, accountID string) {
	if !s.authorizeOAuth(w, r, permInitiate) {
		return
	}
	var wire accountWire
	if status, detail := decodeJSON(w, r, &wire); status != 0 {
		writeProblem(w, status, detail)
		return
	}
	sw := s.switches()
	req, errs := validateAccount(&wire, sw.StrictCallbackURL)
	if len(errs) > 0 {
		s.refuse(RefusalValidation)
		writeProblem(w, http.StatusBadRequest, errs.detail())
		return
	}
	spec, ok := s.opts.Workflows[req.key]
	if !ok {
		s.refuse(RefusalValidation)
		writeProblem(w, http.StatusBadRequest, "workflowDefinition.key invalid")
		return
	}
	base, region := s.baseURL(r), s.regionOf(r)

	s.mu.Lock()
	now := s.now()
	var acc *account
	if accountID != "" {
		acc = s.accounts[accountID]
		if acc == nil || acc.deleted || acc.region != region {
			s.mu.Unlock()
			writeProblem(w, http.StatusNotFound, "The account does not exist")
			return
		}
	} else {
		acc = &account{id: newUUID(), region: region, createdAt: now}
		s.accounts[acc.id] = acc
	}
	e := s.newExecutionLocked(acc, req, spec, now, base)
	resp := s.accountResponseLocked(e, now)
	s.stat(func(st *Stats) {
		if accountID == "" {
			st.AccountsCreated++
			st.AccountsByReference[req.customerRef]++
		}
		st.ExecutionsCreated++
		st.ExecutionsByReference[req.customerRef]++
	})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) newExecutionLocked(acc *account, req *accountInput, spec WorkflowSpec, now time.Time, base string) *execution {
	e := &execution{
		id: newUUID(), accountID: acc.id, region: acc.region, base: base, key: req.key, spec: spec,
		customerRef: req.customerRef, userRef: req.userRef, callbackURL: req.callbackURL,
		web: req.web, consent: req.consent, idSelection: req.idSelection, webHrefOmitted: s.sw.OmitWebHref,
		status: jumio.StatusInitiated, createdAt: now, tokenDeadline: now.Add(req.lifetime),
	}
	e.txToken = s.transactionToken("api", acc.id, e.id, now, e.tokenDeadline)
	for _, cs := range spec.Credentials {
		c := &credential{id: newUUID(), spec: cs, parts: map[string]*part{}}
		e.creds = append(e.creds, c)
		s.credOwner[c.id] = e.id
	}
	s.execs[e.id] = e
	s.initiated[e.id] = e
	s.txTokens[e.txToken] = e.id
	if spec.allows(jumio.ChannelWeb) {
		e.webToken = s.transactionToken("web", acc.id, e.id, now, e.tokenDeadline)
		s.webTokens[e.webToken] = e.id
	}
	if spec.allows(jumio.ChannelSDK) {
		e.sdkToken = s.transactionToken("sdk", acc.id, e.id, now, e.tokenDeadline)
	}
	acc.execIDs = append(acc.execIDs, e.id)
	if s.opts.AutoCompleteWeb > 0 && spec.webCapable() {
		id := e.id
		s.afterLocked(s.opts.AutoCompleteWeb, func() { _ = s.CompleteWeb(id) })
	}
	s.log.Info("workflow execution created", zap.String("account_id", acc.id), zap.String("region", string(acc.region)),
		zap.String("workflow_execution_id", e.id), zap.String("workflow", string(e.key)))
	return e
}

// decodeJSON reads a JSON request body into v. It returns 0 on success, or
// a status and a detail that never echoes the body.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) (int, string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return http.StatusBadRequest, "Content-Type must be application/json"
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, "The request body is too large"
		}
		return http.StatusBadRequest, "The request body could not be read"
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return http.StatusBadRequest, "A JSON request body is required"
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return http.StatusBadRequest, "JSON field " + te.Field + " must be of type " + te.Type.String()
		}
		return http.StatusBadRequest, "The request body is not a valid JSON object for this endpoint"
	}
	return 0, ""
}
