package jumiotest

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// URLs. Retrieval URLs live on the server's root; credential ("api") URLs
// under /link.

func accountHref(base, accountID string) string {
	return base + apiPrefix + "/accounts/" + url.PathEscape(accountID)
}

func (e *execution) execHref() string {
	return accountHref(e.base, e.accountID) + "/workflow-executions/" + url.PathEscape(e.id)
}

// notifyHref is workflowExecution.href in callbacks and status answers:
// the short form real callbacks carry, or with Switches.LongExecutionHref
// the documented long one. s.mu must be held.
func (s *Server) notifyHrefLocked(e *execution) string {
	if s.sw.LongExecutionHref {
		return e.execHref()
	}
	return e.base + apiPrefix + "/workflow-executions/" + url.PathEscape(e.id)
}

func (e *execution) linkExecURL() string {
	return e.base + linkPrefix + "/accounts/" + url.PathEscape(e.accountID) + "/workflow-executions/" + url.PathEscape(e.id)
}

func (e *execution) linkPartURL(c *credential, classifier string) string {
	return e.linkExecURL() + "/credentials/" + url.PathEscape(c.id) + "/parts/" + classifier
}

func (e *execution) partHref(c *credential, classifier string) string {
	return accountHref(e.base, e.accountID) + "/credentials/" + url.PathEscape(c.id) + "/parts/" + classifier
}

func (e *execution) webHref() string {
	locale := e.web.locale
	if locale == "" {
		locale = "en"
	}
	q := url.Values{"authorizationToken": {e.webToken}, "locale": {locale}}
	return e.base + "/web/v4/app?" + q.Encode()
}

func (s *Server) statusResponseLocked(e *execution) jumio.StatusResponse {
	return jumio.StatusResponse{
		Account: jumio.Ref{ID: e.accountID, Href: accountHref(e.base, e.accountID)},
		WorkflowExecution: jumio.WorkflowStatus{ID: e.id, Href: s.notifyHrefLocked(e), DefinitionKey: string(e.key),
			Status: e.visibleStatus()},
	}
}

func (s *Server) callbackBodyLocked(e *execution, status string, now time.Time) ([]byte, error) {
	return json.Marshal(jumio.Callback{
		CallbackSentAt:    jumio.FormatTimestamp(now),
		UserReference:     e.userRef,
		WorkflowExecution: jumio.WorkflowStatus{ID: e.id, Href: s.notifyHrefLocked(e), DefinitionKey: string(e.key), Status: status},
		Account:           jumio.Ref{ID: e.accountID, Href: accountHref(e.base, e.accountID)},
	})
}

// accountResponseLocked is the answer to account create and update.
func (s *Server) accountResponseLocked(e *execution, now time.Time) jumio.AccountResponse {
	resp := jumio.AccountResponse{
		Timestamp:         jumio.FormatTimestamp(now),
		Account:           jumio.Ref{ID: e.accountID},
		WorkflowExecution: jumio.WorkflowExecutionStart{ID: e.id},
	}
	for _, c := range e.creds {
		cs := jumio.CredentialStart{ID: c.id, Category: c.spec.Category, Label: c.spec.Category,
			AllowedChannels: append([]string(nil), c.spec.Channels...)}
		if c.spec.allows(jumio.ChannelAPI) {
			parts := map[string]string{}
			for _, p := range c.spec.Parts {
				parts[strings.ToLower(p)] = e.linkPartURL(c, p)
			}
			cs.API = &jumio.CredentialAPI{Token: e.txToken, Parts: parts, WorkflowExecution: e.linkExecURL()}
		}
		resp.WorkflowExecution.Credentials = append(resp.WorkflowExecution.Credentials, cs)
	}
	if e.spec.allows(jumio.ChannelWeb) {
		web := jumio.WebResponse{SuccessURL: e.web.successURL, ErrorURL: e.web.errorURL}
		if !e.webHrefOmitted {
			web.Href = e.webHref()
		}
		if web != (jumio.WebResponse{}) {
			resp.Web = &web
		}
	}
	if e.spec.allows(jumio.ChannelSDK) {
		resp.SDK = &jumio.SDKResponse{Token: e.sdkToken}
	}
	return resp
}

// uploadResponseLocked is the answer to a part upload: the parts of the
// credential still expected.
func (s *Server) uploadResponseLocked(e *execution, c *credential, now time.Time) jumio.UploadResponse {
	remaining := map[string]string{}
	for _, p := range c.spec.Parts {
		if c.parts[p] == nil {
			remaining[strings.ToLower(p)] = e.linkPartURL(c, p)
		}
	}
	return jumio.UploadResponse{
		Timestamp:         jumio.FormatTimestamp(now),
		Account:           jumio.Ref{ID: e.accountID},
		WorkflowExecution: jumio.Ref{ID: e.id},
		Credential:        &jumio.Ref{ID: c.id},
		Part:              &jumio.Ref{ID: newUUID()},
		API:               jumio.CredentialAPI{Token: e.txToken, Parts: remaining, WorkflowExecution: e.linkExecURL()},
	}
}

// detailsLocked is the retrieval details of e.
func (s *Server) detailsLocked(e *execution) jumio.WorkflowDetails {
	d := jumio.WorkflowDetails{
		Workflow: jumio.WorkflowInfo{ID: e.id, Status: e.status, DefinitionKey: string(e.key),
			UserReference: e.userRef, CustomerInternalReference: e.customerRef},
		Account:     jumio.Ref{ID: e.accountID},
		CreatedAt:   jumio.FormatTimestamp(e.createdAt),
		Credentials: s.retrievedCredentialsLocked(e),
		Steps:       &jumio.Link{Href: e.execHref() + "/steps"},
		Decision: jumio.Decision{Type: jumio.DecisionNotExecuted,
			Details: jumio.DecisionDetails{Label: e.status}, Risk: &jumio.Risk{Score: -1}},
	}
	if e.started {
		d.StartedAt = jumio.FormatTimestamp(e.startedAt)
	}
	if e.terminal() {
		d.CompletedAt = jumio.FormatTimestamp(e.completedAt)
	}
	if e.result != nil {
		d.Decision = e.result.decision
		d.Capabilities = e.result.capabilities
	}
	if e.consent != nil && e.consent.obtained != "" {
		d.Consent = &jumio.Consent{Obtained: e.consent.obtained, ObtainedAt: e.consent.obtainedAt}
	}
	return d
}

func (s *Server) retrievedCredentialsLocked(e *execution) []jumio.RetrievedCredential {
	var out []jumio.RetrievedCredential
	for _, c := range e.creds {
		inScope := len(c.parts) > 0
		if e.result != nil {
			for _, id := range e.result.scope {
				inScope = inScope || id == c.id
			}
		}
		if !inScope {
			continue
		}
		rc := jumio.RetrievedCredential{ID: c.id, Category: c.spec.Category, Parts: []jumio.RetrievedPart{}}
		classifiers := make([]string, 0, len(c.parts))
		for cls := range c.parts {
			classifiers = append(classifiers, cls)
		}
		sort.Slice(classifiers, func(i, j int) bool { return classifierRank(classifiers[i]) < classifierRank(classifiers[j]) })
		for _, cls := range classifiers {
			p := jumio.RetrievedPart{Classifier: cls}
			if c.parts[cls].data != nil {
				p.Href = e.partHref(c, cls)
			}
			rc.Parts = append(rc.Parts, p)
		}
		if c.spec.Category != jumio.CategoryData && e.consent != nil {
			accepted := true
			rc.Consent = &jumio.CredentialConsent{DecisionAccepted: &accepted, CollectedBy: collectedByCustomer}
		}
		out = append(out, rc)
	}
	return out
}

func stepsOf(e *execution) jumio.Steps {
	st := jumio.Steps{Steps: []jumio.Step{}}
	if e.result != nil && e.status == jumio.StatusProcessed {
		st.Steps = append(st.Steps, e.result.steps...)
	}
	return st
}
