package jumiotest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // register the JPEG decoder for image.DecodeConfig
	_ "image/png"  // register the PNG decoder
	"io"
	"mime"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// Image limits from Jumio's Credentials API: the longest side must be more
// than 300 px and at most 8000 px.
const (
	minLongestSide = 300
	maxSide        = 8000
)

var (
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
	jpegMagic = []byte{0xFF, 0xD8, 0xFF}
)

// authorizeCredentialLocked checks a credential-service call: the bearer
// must be the transaction token of the execution in the path, which must
// still accept it. It returns the execution, or a status and detail.
func (s *Server) authorizeCredentialLocked(r *http.Request) (*execution, int, string) {
	tok := bearerToken(r)
	if tok == "" {
		return nil, http.StatusUnauthorized, "Full authentication is required to access this resource"
	}
	owner, ok := s.txTokens[tok]
	if !ok {
		return nil, http.StatusUnauthorized, "The token is invalid"
	}
	execID := r.PathValue("executionId")
	if owner != execID {
		return nil, http.StatusUnauthorized, "The token is not valid for this workflow execution"
	}
	e := s.execs[execID]
	if e != nil && e.region != s.regionOf(r) {
		// Another region's transaction token: unknown here.
		return nil, http.StatusUnauthorized, "The token is invalid"
	}
	if e == nil || e.deleted || e.accountID != r.PathValue("accountId") {
		return nil, http.StatusNotFound, "The workflow execution does not exist"
	}
	s.applyClockLocked(e, s.now())
	if e.consumed {
		return nil, http.StatusForbidden, "The token is no longer valid: the workflow execution was finalized or expired"
	}
	return e, 0, ""
}

// handleUpload is POST (add) or PUT (replace) on
// /link/…/credentials/{credentialId}/parts/{classifier}.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	classifier := strings.ToUpper(r.PathValue("classifier"))
	credID := r.PathValue("credentialId")
	replace := r.Method == http.MethodPut

	// check auth, target and consent before reading the body
	s.mu.Lock()
	e, status, detail := s.authorizeCredentialLocked(r)
	if status == 0 {
		status, detail = checkUploadTarget(e, credID, classifier, replace)
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "POST")
		}
	}
	consentMissing := status == 0 && needsConsent(e.credential(credID)) && !s.sw.AllowMissingConsent && !e.consent.valid()
	s.mu.Unlock()
	if consentMissing {
		// Jumio: ID and biometric uploads over the API need end-user
		// consent in the account request (jumio-api.md §10.1). The status
		// is the simulator's choice: Jumio answers missing parameter values
		// with 403 and does not document this case.
		s.refuse(RefusalConsent)
		status, detail = http.StatusForbidden, "End-user consent is required before uploading ID or biometric data: "+
			"add userConsent {userIp, userLocation {country}, consent {obtained: \"yes\", obtainedAt}} to the account request"
	}
	if status != 0 {
		writeProblem(w, status, detail)
		return
	}

	var p *part
	var pd *jumio.PreparedData
	if classifier == jumio.PartPreparedData {
		pd, p, status, detail = s.readPreparedData(w, r)
	} else {
		p, status, detail = s.readImage(w, r)
	}
	if status != 0 {
		writeProblem(w, status, detail)
		return
	}

	s.mu.Lock()
	e, status, detail = s.authorizeCredentialLocked(r) // it may have been finalized meanwhile
	if status == 0 {
		status, detail = checkUploadTarget(e, credID, classifier, replace)
	}
	if status != 0 {
		s.mu.Unlock()
		writeProblem(w, status, detail)
		return
	}
	now := s.now()
	c := e.credential(credID)
	c.parts[classifier] = p
	if pd != nil {
		e.preparedData = pd
	}
	if classifier == jumio.PartPreparedData && e.spec.webCapable() && !s.sw.PreparedDataStartsSession {
		// Prepared data goes in before the user starts the web or SDK
		// flow: it does not start the acquisition, but it is activity
		// once the user has.
		if e.started {
			e.lastActivity = now
		}
	} else {
		s.startLocked(e, now)
	}
	resp := s.uploadResponseLocked(e, c, now)
	s.stat(func(st *Stats) {
		st.Uploads++
		st.UploadsByExecution[e.id]++
	})
	s.log.Debug("part uploaded", zap.String("workflow_execution_id", e.id), zap.String("credential_id", c.id),
		zap.String("classifier", classifier))
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// needsConsent reports whether uploads to c collect ID or biometric data,
// which Jumio accepts over the API only with end-user consent: the FRONT,
// BACK and FACE parts of ID, SELFIE and FACEMAP credentials (a DOCUMENT,
// such as a proof of address, or prepared data does not).
func needsConsent(c *credential) bool {
	switch c.spec.Category {
	case jumio.CategoryID, jumio.CategorySelfie, jumio.CategoryFacemap:
		return true
	}
	return false
}

func checkUploadTarget(e *execution, credID, classifier string, replace bool) (int, string) {
	c := e.credential(credID)
	if c == nil || !c.spec.allows(jumio.ChannelAPI) {
		return http.StatusNotFound, "The credential does not exist"
	}
	if !c.spec.hasPart(classifier) {
		return http.StatusNotFound, "The part does not belong to this credential"
	}
	if replace && c.parts[classifier] == nil {
		return http.StatusMethodNotAllowed, "Request method 'PUT' is not supported: there is no part to replace"
	}
	return 0, ""
}

// readImage streams the multipart field "file" with a size limit and
// checks it is a JPEG or PNG of acceptable dimensions: Jumio's Credentials
// API takes "JPEG, PNG (max. size 15 MB and max resolution of 8000 x 8000.
// Longest side must be > 300px.)". Every refusal is a 400 with Jumio's
// error body.
func (s *Server) readImage(w http.ResponseWriter, r *http.Request) (*part, int, string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, http.StatusBadRequest, "Content-Type must be multipart/form-data"
	}
	limit := s.opts.MaxUploadSize
	r.Body = http.MaxBytesReader(w, r.Body, limit+64<<10) // room for the multipart envelope
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, http.StatusBadRequest, "The multipart body is malformed"
	}
	tooLarge := func() (*part, int, string) {
		s.refuse(RefusalImage)
		return nil, http.StatusBadRequest, fmt.Sprintf("The file exceeds the maximum size of %d bytes", limit)
	}
	isMaxBytes := func(err error) bool {
		var mbe *http.MaxBytesError
		return errors.As(err, &mbe)
	}
	for {
		fp, err := mr.NextPart()
		if err == io.EOF {
			return nil, http.StatusBadRequest, "The multipart field 'file' is required"
		}
		if err != nil {
			if isMaxBytes(err) {
				return tooLarge()
			}
			return nil, http.StatusBadRequest, "The multipart body is malformed"
		}
		if fp.FormName() != "file" {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(fp, limit+1))
		switch {
		case err != nil && isMaxBytes(err), int64(len(data)) > limit:
			return tooLarge()
		case err != nil:
			return nil, http.StatusBadRequest, "The multipart body is malformed"
		}
		var ctype string
		switch {
		case bytes.HasPrefix(data, pngMagic):
			ctype = "image/png"
		case bytes.HasPrefix(data, jpegMagic):
			ctype = "image/jpeg"
		default:
			s.refuse(RefusalImage)
			return nil, http.StatusBadRequest, "The file must be a JPEG or PNG image"
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			s.refuse(RefusalImage)
			return nil, http.StatusBadRequest, "The image could not be decoded"
		}
		if longest := max(cfg.Width, cfg.Height); longest <= minLongestSide || cfg.Width > maxSide || cfg.Height > maxSide {
			s.refuse(RefusalImage)
			return nil, http.StatusBadRequest, "The image's longest side must be more than 300 px and no side more than 8000 px"
		}
		return &part{contentType: ctype, data: data}, 0, ""
	}
}

// readPreparedData decodes and validates a PREPARED_DATA body.
func (s *Server) readPreparedData(w http.ResponseWriter, r *http.Request) (*jumio.PreparedData, *part, int, string) {
	var pd jumio.PreparedData
	if status, detail := decodeJSON(w, r, &pd); status != 0 {
		return nil, nil, status, detail
	}
	if errs := validatePreparedData(&pd); len(errs) > 0 {
		s.refuse(RefusalValidation)
		return nil, nil, http.StatusBadRequest, errs.detail()
	}
	raw, err := json.Marshal(pd)
	if err != nil {
		return nil, nil, http.StatusBadRequest, "The prepared data could not be encoded"
	}
	return &pd, &part{contentType: "application/json", data: raw}, 0, ""
}

// handleFinalize is PUT /link/api/v1/accounts/{a}/workflow-executions/{w}:
// acquisition over the API is complete. Any body is ignored.
func (s *Server) handleFinalize(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxJSONBody))
	s.mu.Lock()
	e, status, detail := s.authorizeCredentialLocked(r)
	if status != 0 {
		s.mu.Unlock()
		writeProblem(w, status, detail)
		return
	}
	now := s.now()
	e.finalized = true
	runNow := s.acquireLocked(e, jumio.ChannelAPI, now)
	resp := jumio.FinalizeResponse{
		Timestamp:         jumio.FormatTimestamp(now),
		Account:           jumio.Ref{ID: e.accountID},
		WorkflowExecution: jumio.Ref{ID: e.id},
	}
	s.stat(func(st *Stats) {
		st.Finalizes++
		st.FinalizesByExecution[e.id]++
	})
	id := e.id
	s.mu.Unlock()
	if runNow {
		s.process(id)
	}
	writeJSON(w, http.StatusOK, resp)
}
