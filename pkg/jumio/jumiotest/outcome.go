package jumiotest

import (
	"strings"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// Execution is what a decider (Options.Decide, [Server.SetDecider]) sees
// of a workflow execution when it is processed. PreparedData is a copy.
type Execution struct {
	AccountID                 string              `json:"accountId"`
	ID                        string              `json:"id"`
	WorkflowKey               jumio.WorkflowKey   `json:"workflowKey"`
	CustomerInternalReference string              `json:"customerInternalReference"`
	UserReference             string              `json:"userReference,omitempty"`
	Channel                   string              `json:"channel"` // API if finalized over the API, WEB if completed by the (simulated) user
	Parts                     []string            `json:"parts"`   // part classifiers acquired
	PreparedData              *jumio.PreparedData `json:"preparedData,omitempty"`
}

// Outcome scripts the result of a workflow execution.
//
// Decision is the overall decision type: PASSED (default), WARNING,
// REJECTED or NOT_EXECUTED. The capability results follow from it (for
// ID workflows, REJECTED means similarity NO_MATCH and WARNING means
// imageChecks REPEATED_FACE; for email and phone workflows HIGH_RISK and
// MEDIUM_RISK; for standalone screening a watchlist ALERT).
//
// Label is the decision label (default: the type). Score is the risk
// score; a score outside the type's band (PASSED 0–30, WARNING 31–70,
// REJECTED 71–100, NOT_EXECUTED -1) is replaced by the band's default
// (10, 50, 90, -1).
//
// Capabilities overrides the decision of every result of the named
// capabilities (e.g. "usability": {Type: "REJECTED", Details: {Label:
// "BLURRED"}}); an empty label gets a typical one. Dependants of a
// REJECTED or NOT_EXECUTED prerequisite become NOT_EXECUTED /
// PRECONDITION_NOT_FULFILLED, and the overall decision is made consistent
// with the results: a rejected (or not uploaded) usability or any REJECTED
// result turns PASSED/WARNING into REJECTED, a WARNING result turns PASSED
// into WARNING, and all results NOT_EXECUTED make it NOT_EXECUTED.
//
// WatchlistAlert makes every watchlistScreening result that runs (its
// prerequisites and data present) WARNING / ALERT with search results,
// while such an alert does not lower the overall decision: an alert under
// a PASSED decision, as standalone screening (workflow 10010) reports it
// (the "alert" marker of [DeriveOutcome]).
type Outcome struct {
	Decision       string                    `json:"decision,omitempty"`
	Label          string                    `json:"label,omitempty"`
	Score          float64                   `json:"score,omitempty"`
	Capabilities   map[string]jumio.Decision `json:"capabilities,omitempty"`
	WatchlistAlert bool                      `json:"watchlistAlert,omitempty"`
}

// Default risk scores of [DeriveOutcome].
const (
	ScorePassed   = 10
	ScoreWarning  = 50
	ScoreRejected = 90
)

// DeriveOutcome is the default decider. It looks for case-insensitive
// markers in the customerInternalReference, the userReference and the
// prepared-data email, in this order of precedence:
//
//   - "notexec": NOT_EXECUTED (score -1)
//   - "reject": REJECTED (score 90)
//   - "warn": WARNING (score 50)
//   - "alert": PASSED (score 10) with watchlistScreening WARNING / ALERT
//     and searchResults > 0 (an alert under a passed decision, as with
//     standalone screening, workflow 10010; see Outcome.WatchlistAlert).
//     Workflows without watchlist screening simply pass.
//   - otherwise PASSED (score 10)
//
// For example a job with customerInternalReference "order-42-reject"
// is rejected, prepared data with email "warn@example.com" gives a
// MEDIUM_RISK email verification, and a 10010 job with userReference
// "user-7-alert" passes with a watchlist alert.
func DeriveOutcome(e Execution) Outcome {
	hay := strings.ToLower(e.CustomerInternalReference + "\x00" + e.UserReference)
	if e.PreparedData != nil {
		hay += "\x00" + strings.ToLower(e.PreparedData.Email)
	}
	switch {
	case strings.Contains(hay, "notexec"):
		return Outcome{Decision: jumio.DecisionNotExecuted, Score: -1}
	case strings.Contains(hay, "reject"):
		return Outcome{Decision: jumio.DecisionRejected, Score: ScoreRejected}
	case strings.Contains(hay, "warn"):
		return Outcome{Decision: jumio.DecisionWarning, Score: ScoreWarning}
	case strings.Contains(hay, "alert"):
		return Outcome{Decision: jumio.DecisionPassed, Score: ScorePassed, WatchlistAlert: true}
	}
	return Outcome{Decision: jumio.DecisionPassed, Score: ScorePassed}
}

// normalized fills defaults and puts the score in the type's band.
func (o Outcome) normalized() Outcome {
	switch o.Decision {
	case jumio.DecisionPassed, jumio.DecisionWarning, jumio.DecisionRejected, jumio.DecisionNotExecuted:
	default:
		o.Decision = jumio.DecisionPassed
	}
	if o.Label == "" {
		o.Label = o.Decision
	}
	if !inBand(o.Decision, o.Score) {
		o.Score = defaultScore(o.Decision)
	}
	return o
}

func inBand(typ string, score float64) bool {
	switch typ {
	case jumio.DecisionPassed:
		return score >= 0 && score <= 30
	case jumio.DecisionWarning:
		return score > 30 && score <= 70
	case jumio.DecisionRejected:
		return score > 70 && score <= 100
	}
	return score == -1
}

func defaultScore(typ string) float64 {
	switch typ {
	case jumio.DecisionPassed:
		return ScorePassed
	case jumio.DecisionWarning:
		return ScoreWarning
	case jumio.DecisionRejected:
		return ScoreRejected
	}
	return -1
}
