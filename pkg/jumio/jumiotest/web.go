package jumiotest

import (
	"html/template"
	"maps"
	"net/http"
	"strings"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// healthState is the status host's answer.
type healthState struct {
	Status  string            `json:"status"`
	Details map[string]string `json:"details,omitempty"`
}

// SetHealth sets what GET / (the status host) answers: status UP,
// DEGRADED or DOWN ("" means UP), with optional details per component
// (api, callback, mobile, processing, retrieval, web), e.g.
// SetHealth("DEGRADED", map[string]string{"callback": "DEGRADED"}).
func (s *Server) SetHealth(status string, details map[string]string) {
	if status == "" {
		status = "UP"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health = healthState{Status: status, Details: maps.Clone(details)}
}

func (s *Server) healthSnapshot() healthState {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.health
	h.Details = maps.Clone(h.Details)
	return h
}

// handleHealth is GET / on the status host. It answers 200 whatever the
// status: the body carries it.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.healthSnapshot())
}

type webView struct {
	Valid        bool
	Message      string
	ExecutionID  string
	AccountID    string
	WorkflowKey  string
	WorkflowName string
	Status       string
	Locale       string
	Credentials  []string
	SuccessURL   string
	ErrorURL     string
	Reference    string
}

// handleWebApp is the web.href target: a self-contained page standing in
// for Jumio's hosted flow. Opening it starts acquisition; its buttons
// complete the execution through the control API.
func (s *Server) handleWebApp(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("authorizationToken")
	locale := r.URL.Query().Get("locale")
	status := http.StatusOK
	var v webView
	s.mu.Lock()
	e := s.execs[s.webTokens[tok]]
	switch {
	case tok == "" || e == nil || e.deleted || e.region != s.regionOf(r):
		status = http.StatusNotFound
		v.Message = "This verification link is invalid (error 9100)."
	default:
		now := s.now()
		s.applyClockLocked(e, now)
		v = webView{
			ExecutionID: e.id, AccountID: e.accountID, WorkflowKey: string(e.key), WorkflowName: e.spec.Name,
			Status: e.status, Locale: locale, SuccessURL: e.web.successURL, ErrorURL: e.web.errorURL,
			Reference: e.customerRef,
		}
		for _, c := range e.creds {
			if c.spec.allows(jumio.ChannelWeb) || c.spec.allows(jumio.ChannelSDK) {
				v.Credentials = append(v.Credentials, c.spec.Category)
			}
		}
		switch e.status {
		case jumio.StatusInitiated:
			s.startLocked(e, now)
			v.Valid = true
		case jumio.StatusTokenExpired:
			v.Message = "This verification link has expired (error 9200)."
		case jumio.StatusSessionExpired:
			v.Message = "The session has expired (error 9210)."
		default:
			v.Message = "This verification has already been completed."
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = webPage.Execute(w, v)
}

var webPage = template.Must(template.New("web").Funcs(template.FuncMap{"join": strings.Join}).Parse(`<!doctype html>
<html lang="{{if .Locale}}{{.Locale}}{{else}}en{{end}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Jumio simulator – identity verification</title>
<style>
 body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f3f5f8;color:#1d2433;margin:0}
 main{max-width:34rem;margin:3rem auto;background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem}
 h1{font-size:1.3rem;margin-top:0} dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;font-size:.9rem}
 dt{color:#667} dd{margin:0;font-family:ui-monospace,monospace;word-break:break-all}
 .buttons{display:flex;gap:.6rem;flex-wrap:wrap;margin-top:1.5rem}
 button{border:0;border-radius:8px;padding:.7rem 1rem;font-size:1rem;cursor:pointer;color:#fff}
 .pass{background:#1f8f4e}.warn{background:#c98a00}.reject{background:#c62f2f} button:disabled{opacity:.5;cursor:default}
 .note{font-size:.8rem;color:#667;margin-top:1.5rem} #result{margin-top:1rem;font-weight:600}
</style>
</head>
<body>
<main>
<h1>Jumio simulator — identity verification</h1>
{{if .ExecutionID}}<dl>
 <dt>Workflow</dt><dd>{{.WorkflowKey}}{{if .WorkflowName}} ({{.WorkflowName}}){{end}}</dd>
 <dt>Account</dt><dd>{{.AccountID}}</dd>
 <dt>Execution</dt><dd>{{.ExecutionID}}</dd>
 <dt>Status</dt><dd id="status">{{.Status}}</dd>
 <dt>Credentials</dt><dd>{{join .Credentials ", "}}</dd>
</dl>{{end}}
{{if .Valid}}
<p>Simulate the end user finishing the capture flow:</p>
<div class="buttons">
 <button class="pass" onclick="finish('PASSED')">Finish (pass)</button>
 <button class="warn" onclick="finish('WARNING')">Finish (warning)</button>
 <button class="reject" onclick="finish('REJECTED')">Finish (reject)</button>
</div>
<div id="result"></div>
{{else}}
<p id="result">{{.Message}}</p>
{{if .ErrorURL}}<p><a href="{{.ErrorURL}}">Return</a></p>{{end}}
{{end}}
<p class="note">Served by the kycpipe Jumio simulator (jumiotest): nothing is sent to Jumio.</p>
</main>
{{if .Valid}}<script>
const execId = {{.ExecutionID}}, accountId = {{.AccountID}}, reference = {{.Reference}}, successUrl = {{.SuccessURL}};
async function finish(decision) {
  document.querySelectorAll("button").forEach(b => b.disabled = true);
  const out = document.getElementById("result");
  try {
    const r = await fetch("/_sim/executions/" + encodeURIComponent(execId) + "/complete", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({decision})});
    const j = await r.json();
    if (!r.ok) { out.textContent = "Error: " + (j.detail || r.status); return; }
    document.getElementById("status").textContent = j.status;
    out.textContent = "Done: " + j.status + (j.decision ? " – " + j.decision.type + " (score " + j.decision.risk.score + ")" : "");
    if (successUrl) {
      const u = new URL(successUrl);
      u.searchParams.set("accountId", accountId);
      u.searchParams.set("workflowExecutionId", execId);
      u.searchParams.set("acquisitionStatus", "SUCCESS");
      u.searchParams.set("customerInternalReference", reference);
      setTimeout(() => { window.location.href = u.toString(); }, 800);
    }
  } catch (e) { out.textContent = "Error: " + e; }
}
</script>{{end}}
</body>
</html>
`))
