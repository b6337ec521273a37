package jumiotest

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// Errors of the execution-control methods ([Server.CompleteWeb],
// [Server.StartAcquisition]).
var (
	ErrUnknownExecution = errors.New("jumiotest: unknown workflow execution")
	ErrInvalidState     = errors.New("jumiotest: workflow execution is not in a state that allows this")
)

type account struct {
	id        string
	region    jumio.Region
	createdAt time.Time
	deleted   bool
	execIDs   []string
}

type credential struct {
	id    string
	spec  CredentialSpec
	parts map[string]*part // by classifier
}

type part struct {
	contentType string
	data        []byte // nil for FACEMAP (no href)
}

// execution is one workflow execution and its state machine:
// INITIATED (started or not) → ACQUIRED → PROCESSED, or INITIATED →
// TOKEN_EXPIRED / SESSION_EXPIRED.
type execution struct {
	id, accountID string
	region        jumio.Region
	base          string // scheme://host the execution was created through
	key           jumio.WorkflowKey
	spec          WorkflowSpec
	customerRef   string
	userRef       string
	callbackURL   string
	web           webSettings
	consent       *userConsent // as given in the account request
	idSelection   *idSelection // country and ID type from workflowDefinition.credentials
	txToken       string
	webToken      string
	sdkToken      string
	// webHrefOmitted: the account response had no web.href
	// (Switches.OmitWebHref when it was created).
	webHrefOmitted bool
	creds          []*credential

	status        string
	started       bool
	consumed      bool // transaction token no longer accepted
	finalized     bool // finalized over the API
	deleted       bool
	channel       string // API or WEB once acquired
	createdAt     time.Time
	startedAt     time.Time
	lastActivity  time.Time
	tokenDeadline time.Time
	completedAt   time.Time
	retrievableAt time.Time // real time; details answer 404 before it
	preparedData  *jumio.PreparedData
	override      *Outcome // from the web page or the control API
	result        *result  // set on PROCESSED or expiry

	// callbacks
	cbQueue     []cbJob
	cbRunning   bool
	cbHeld      []cbJob // intermediate callbacks held back by Reorder
	cbDelivered []string
	cbDropped   int

	ended bool // in Server.finished (retention.go)
}

func (e *execution) credential(id string) *credential {
	for _, c := range e.creds {
		if c.id == id {
			return c
		}
	}
	return nil
}

// uploadedParts lists the classifiers acquired so far, sorted.
func (e *execution) uploadedParts() []string {
	var out []string
	for _, c := range e.creds {
		for cls := range c.parts {
			if !slices.Contains(out, cls) {
				out = append(out, cls)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return classifierRank(out[i]) < classifierRank(out[j]) })
	return out
}

func (e *execution) terminal() bool { return jumio.IsTerminalStatus(e.status) }

// applyClockLocked applies clock-driven expiry to e. s.mu must be held.
func (s *Server) applyClockLocked(e *execution, now time.Time) {
	if e.deleted || e.status != jumio.StatusInitiated {
		return
	}
	switch {
	case !e.started && !now.Before(e.tokenDeadline):
		s.expireLocked(e, jumio.StatusTokenExpired, e.tokenDeadline)
	case e.started && !now.Before(e.lastActivity.Add(s.opts.SessionTimeout)):
		s.expireLocked(e, jumio.StatusSessionExpired, e.lastActivity.Add(s.opts.SessionTimeout))
	}
}

func (s *Server) expireLocked(e *execution, status string, at time.Time) {
	e.status = status
	e.consumed = true
	e.completedAt = at
	e.result = s.expiredResultLocked(e)
	s.endedLocked(e)
	s.log.Info("workflow execution expired", zap.String("workflow_execution_id", e.id), zap.String("status", status))
	s.notifyLocked(e, status)
}

// startLocked marks acquisition as started (the user opened the link or
// the first part was uploaded).
func (s *Server) startLocked(e *execution, now time.Time) {
	e.lastActivity = now
	if e.started {
		return
	}
	e.started = true
	e.startedAt = now
	s.notifyLocked(e, jumio.StatusAcquisitionStarted)
}

// acquireLocked moves e to ACQUIRED and schedules processing. It returns
// true if processing must run now (ProcessingDelay 0): the caller then
// calls s.process(e.id) after unlocking.
func (s *Server) acquireLocked(e *execution, channel string, now time.Time) bool {
	s.startLocked(e, now)
	e.status = jumio.StatusAcquired
	e.consumed = true
	e.channel = channel
	s.log.Info("workflow execution acquired", zap.String("workflow_execution_id", e.id), zap.String("channel", channel))
	s.notifyLocked(e, jumio.StatusAcquired)
	if s.opts.ProcessingDelay <= 0 {
		return true
	}
	id := e.id
	s.afterLocked(s.opts.ProcessingDelay, func() { s.process(id) })
	return false
}

// process decides an ACQUIRED execution's outcome and moves it to
// PROCESSED. The decider runs without the lock held.
func (s *Server) process(id string) {
	s.mu.Lock()
	e := s.execs[id]
	if e == nil || e.deleted || e.status != jumio.StatusAcquired {
		s.mu.Unlock()
		return
	}
	snap := e.snapshot()
	override := e.override
	scripted, hasScript := s.outcomes[e.customerRef]
	decide := s.decide
	s.mu.Unlock()

	var out Outcome
	switch {
	case override != nil:
		out = *override
	case hasScript:
		out = scripted
	default:
		out = decide(snap)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if e.deleted || e.status != jumio.StatusAcquired {
		return
	}
	now := s.now()
	e.result = s.processedResultLocked(e, out, now)
	e.status = jumio.StatusProcessed
	e.completedAt = now
	s.endedLocked(e)
	e.retrievableAt = time.Now().Add(s.opts.RetrievableDelay)
	s.log.Info("workflow execution processed", zap.String("workflow_execution_id", e.id),
		zap.String("decision", e.result.decision.Type))
	s.notifyLocked(e, jumio.StatusProcessed)
}

// retrievable reports whether a PROCESSED execution's details can be read
// yet (see Options.RetrievableDelay).
func (e *execution) retrievable() bool {
	return e.status != jumio.StatusProcessed || !time.Now().Before(e.retrievableAt)
}

// visibleStatus is the status the retrieval API reports.
func (e *execution) visibleStatus() string {
	if !e.retrievable() {
		return jumio.StatusAcquired
	}
	return e.status
}

// Sweep applies clock-driven transitions now: executions whose token
// lifetime passed before acquisition started become TOKEN_EXPIRED, started
// ones inactive for SessionTimeout become SESSION_EXPIRED, each with its
// callback. With Options.MaxExecutions, it then forgets the oldest ended
// executions beyond the bound. The background sweeper calls it every
// SweepInterval. Its work grows with the executions still INITIATED, not
// with every execution ever created.
func (s *Server) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, id := range sortedKeys(s.initiated) {
		e := s.initiated[id]
		s.applyClockLocked(e, now)
		if e.deleted || e.status != jumio.StatusInitiated {
			delete(s.initiated, id)
		}
	}
	s.forgetLocked()
	for tok, t := range s.oauth {
		if now.Sub(t.expiry) > time.Hour && s.current[t.clientID] != t {
			delete(s.oauth, tok)
		}
	}
}

// StartAcquisition simulates the end user opening the web link: it starts
// acquisition (and the session timer), sending an ACQUISITION_STARTED
// callback if intermediate callbacks are on. Calling it again counts as
// user activity. It returns an error wrapping [ErrUnknownExecution] or
// [ErrInvalidState] (the execution is no longer INITIATED).
func (s *Server) StartAcquisition(executionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.liveExecutionLocked(executionID)
	if err != nil {
		return err
	}
	s.startLocked(e, s.now())
	return nil
}

// CompleteWeb simulates the end user finishing the WEB/SDK flow: the
// WEB/SDK credentials get their parts (synthetic images, a FACEMAP and
// LIVENESS_1…6 frames), the execution goes INITIATED → ACQUIRED →
// PROCESSED with channel WEB, and callbacks are sent. The outcome comes
// from SetOutcome or the decider. It returns an error wrapping
// [ErrUnknownExecution], or [ErrInvalidState] when the execution is not
// INITIATED or its workflow has no WEB/SDK channel.
func (s *Server) CompleteWeb(executionID string) error {
	return s.complete(executionID, nil)
}

// complete finishes the web flow, with an optional outcome override.
func (s *Server) complete(id string, override *Outcome) error {
	warmWebImages() // encode outside the lock
	s.mu.Lock()
	e, err := s.liveExecutionLocked(id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if !e.spec.webCapable() {
		s.mu.Unlock()
		return fmt.Errorf("%w: workflow %s has no WEB or SDK channel", ErrInvalidState, e.key)
	}
	now := s.now()
	s.startLocked(e, now)
	for _, c := range e.creds {
		if c.spec.allows(jumio.ChannelWeb) || c.spec.allows(jumio.ChannelSDK) {
			webParts(c)
		}
	}
	if override != nil {
		o := *override
		e.override = &o
	}
	runNow := s.acquireLocked(e, jumio.ChannelWeb, now)
	s.mu.Unlock()
	if runNow {
		s.process(id)
	}
	return nil
}

// liveExecutionLocked returns an existing, INITIATED execution.
func (s *Server) liveExecutionLocked(id string) (*execution, error) {
	e := s.execs[id]
	if e == nil || e.deleted {
		return nil, fmt.Errorf("%w: %s", ErrUnknownExecution, id)
	}
	s.applyClockLocked(e, s.now())
	if e.status != jumio.StatusInitiated {
		return nil, fmt.Errorf("%w: status is %s", ErrInvalidState, e.status)
	}
	return e, nil
}

// SetDecider replaces the outcome decider (nil restores [DeriveOutcome]).
// It applies to executions processed from now on.
func (s *Server) SetDecider(f func(Execution) Outcome) {
	if f == nil {
		f = DeriveOutcome
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.decide = f
}

// SetOutcome scripts the outcome of every execution with this
// customerInternalReference processed from now on. It takes precedence
// over the decider; a decision chosen on the web page (or sent to the
// control API's complete endpoint) takes precedence over it.
func (s *Server) SetOutcome(customerInternalReference string, o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes[customerInternalReference] = o
}

// ExecutionInfo is a snapshot of one workflow execution, for assertions
// and the control API.
type ExecutionInfo struct {
	ID                        string            `json:"id"`
	AccountID                 string            `json:"accountId"`
	Region                    jumio.Region      `json:"region"`
	WorkflowKey               jumio.WorkflowKey `json:"workflowKey"`
	Status                    string            `json:"status"` // the real status (RetrievableDelay does not hide PROCESSED here)
	CustomerInternalReference string            `json:"customerInternalReference"`
	UserReference             string            `json:"userReference,omitempty"`
	// Channel is API (finalized over the API) or WEB (completed by the
	// simulated user); empty before acquisition.
	Channel     string           `json:"channel,omitempty"`
	Credentials []CredentialInfo `json:"credentials"`
	// Parts lists the part classifiers acquired, over all credentials.
	Parts     []string `json:"parts"`
	Started   bool     `json:"started"`
	Finalized bool     `json:"finalized"` // finalized over the API
	Deleted   bool     `json:"deleted"`
	// Decision is the overall decision once PROCESSED or expired.
	Decision *jumio.Decision `json:"decision,omitempty"`
	// CallbacksSent lists the statuses of callbacks the receiver
	// acknowledged with 2xx, in delivery order (duplicates included).
	CallbacksSent []string `json:"callbacksSent"`
	// CallbacksDropped counts this execution's callbacks dropped by
	// DropFirst or DropRate.
	CallbacksDropped int `json:"callbacksDropped"`
	// WebHref is the hosted web flow's URL (WEB-capable workflows).
	WebHref     string    `json:"webHref,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
}

// CredentialInfo describes one credential of an [ExecutionInfo].
type CredentialInfo struct {
	ID       string   `json:"id"`
	Category string   `json:"category"`
	Parts    []string `json:"parts"` // classifiers acquired
}

// Execution returns a snapshot of the workflow execution with this ID
// (deleted ones included, with Deleted set), or false if there is none.
func (s *Server) Execution(id string) (ExecutionInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.execs[id]
	if e == nil {
		return ExecutionInfo{}, false
	}
	s.applyClockLocked(e, s.now())
	return s.infoLocked(e), true
}

// executions returns snapshots of every execution, oldest first.
func (s *Server) executions() []ExecutionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ExecutionInfo, 0, len(s.execs))
	for _, e := range s.execs {
		out = append(out, s.infoLocked(e))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (s *Server) infoLocked(e *execution) ExecutionInfo {
	info := ExecutionInfo{
		ID: e.id, AccountID: e.accountID, Region: e.region, WorkflowKey: e.key, Status: e.status,
		CustomerInternalReference: e.customerRef, UserReference: e.userRef,
		Channel: e.channel, Parts: e.uploadedParts(), Started: e.started,
		Finalized: e.finalized, Deleted: e.deleted,
		CallbacksSent: slices.Clone(e.cbDelivered), CallbacksDropped: e.cbDropped,
		CreatedAt: e.createdAt, StartedAt: e.startedAt, CompletedAt: e.completedAt,
	}
	if info.Parts == nil {
		info.Parts = []string{}
	}
	if info.CallbacksSent == nil {
		info.CallbacksSent = []string{}
	}
	for _, c := range e.creds {
		ci := CredentialInfo{ID: c.id, Category: c.spec.Category, Parts: []string{}}
		for cls := range c.parts {
			ci.Parts = append(ci.Parts, cls)
		}
		sort.Slice(ci.Parts, func(i, j int) bool { return classifierRank(ci.Parts[i]) < classifierRank(ci.Parts[j]) })
		info.Credentials = append(info.Credentials, ci)
	}
	if e.result != nil {
		d := e.result.decision
		info.Decision = &d
	}
	if e.spec.allows(jumio.ChannelWeb) && !e.webHrefOmitted {
		info.WebHref = e.webHref()
	}
	return info
}

// snapshot is what the decider sees.
func (e *execution) snapshot() Execution {
	x := Execution{
		AccountID: e.accountID, ID: e.id, WorkflowKey: e.key,
		CustomerInternalReference: e.customerRef, UserReference: e.userRef,
		Channel: e.channel, Parts: e.uploadedParts(),
	}
	if e.preparedData != nil {
		pd := clonePreparedData(*e.preparedData)
		x.PreparedData = &pd
	}
	return x
}

func clonePreparedData(p jumio.PreparedData) jumio.PreparedData {
	if p.Address != nil {
		a := *p.Address
		p.Address = &a
	}
	if p.ID != nil {
		d := *p.ID
		p.ID = &d
	}
	if p.KYC != nil {
		k := *p.KYC
		p.KYC = &k
	}
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// classifierRank orders part classifiers the way Jumio lists them.
func classifierRank(cls string) int {
	order := []string{jumio.PartFront, jumio.PartBack, jumio.PartFace, "FACEMAP",
		"LIVENESS_1", "LIVENESS_2", "LIVENESS_3", "LIVENESS_4", "LIVENESS_5", "LIVENESS_6", jumio.PartPreparedData}
	if i := slices.Index(order, cls); i >= 0 {
		return i
	}
	return len(order)
}
