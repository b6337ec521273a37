package jumio

import (
	"time"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// The JSON shapes Jumio's API shares with kycpipe's messages are defined in
// package messages (the leaf every consumer imports) and named here by type
// aliases, so both packages speak of the same types.

// Account request fields.
type (
	// WorkflowKey identifies a workflow definition; see [messages.WorkflowKey].
	WorkflowKey = messages.WorkflowKey
	// AccountRequest is the body of account create (POST) and update (PUT).
	//
	// Jumio API docs: https://documentation.jumio.ai/docs/developer-resources/API/CreateUpdateAccounts/creating-and-updating-accounts
	AccountRequest = messages.AccountRequest
	// WorkflowDefinition selects the workflow and customizes it.
	WorkflowDefinition = messages.WorkflowDefinition
	// CredentialDefinition customizes the acquisition of one credential.
	CredentialDefinition = messages.CredentialDefinition
	// PredefinedValue restricts a choice offered to the end user.
	PredefinedValue = messages.PredefinedValue
	// WebSettings configures the hosted web flow.
	WebSettings = messages.WebSettings
	// UserConsent records the end user's consent.
	UserConsent = messages.UserConsent
	// UserLocation is where the end user gave consent.
	UserLocation = messages.UserLocation
	// Consent says whether and when consent was obtained.
	Consent = messages.Consent
)

// Prepared data (PII).
type (
	// PreparedData is the data a DATA credential carries.
	PreparedData = messages.PreparedData
	// PreparedAddress is a postal address in prepared data.
	PreparedAddress = messages.PreparedAddress
	// PreparedDocument describes an identity document in prepared data.
	PreparedDocument = messages.PreparedDocument
	// PreparedRegistration is the kyc block of prepared data.
	PreparedRegistration = messages.PreparedRegistration
)

// References, callbacks and extracted data.
type (
	// Ref is a reference to a Jumio object by ID (and sometimes URL).
	Ref = messages.Ref
	// WorkflowStatus is a workflow execution's identity and status.
	WorkflowStatus = messages.WorkflowStatus
	// Callback is the notification Jumio POSTs to the callback URL.
	//
	// Jumio API docs: https://documentation.jumio.ai/docs/developer-resources/callback
	Callback = messages.Callback
	// ExtractionData is the data extracted from an identity document (PII).
	ExtractionData = messages.ExtractionData
	// ExtractionAddress is the address read from a document (PII).
	ExtractionAddress = messages.ExtractionAddress
	// DateParts is a date split into its parts as printed on a document.
	DateParts = messages.DateParts
)

// Workflow definition keys Jumio documents. Tenants often have custom ones.
const (
	WorkflowWatchlistScreening = messages.WorkflowWatchlistScreening
	WorkflowIDIV               = messages.WorkflowIDIV
	WorkflowIDIVScreening      = messages.WorkflowIDIVScreening
	WorkflowPhoneVerification  = messages.WorkflowPhoneVerification
	WorkflowEmailVerification  = messages.WorkflowEmailVerification
	WorkflowPreparedData       = messages.WorkflowPreparedData
	WorkflowIDIVSupporting     = messages.WorkflowIDIVSupporting
	WorkflowIDSelfie           = messages.WorkflowIDSelfie
)

// Credential categories.
const (
	CategoryID       = messages.CategoryID
	CategorySelfie   = messages.CategorySelfie
	CategoryFacemap  = messages.CategoryFacemap
	CategoryDocument = messages.CategoryDocument
	CategoryData     = messages.CategoryData
)

// Part classifiers for credential uploads.
const (
	PartFront        = messages.PartFront
	PartBack         = messages.PartBack
	PartFace         = messages.PartFace
	PartPreparedData = messages.PartPreparedData
)

// MaxCallbackSize bounds the size of a callback body [ParseCallback] reads.
const MaxCallbackSize = messages.MaxCallbackSize

// ErrInvalidCallback is returned by [ParseCallback] for a body that is not a
// Jumio callback.
var ErrInvalidCallback = messages.ErrInvalidCallback

// ParseTimestamp parses Jumio's timestamps; see [messages.ParseTimestamp].
func ParseTimestamp(s string) (time.Time, bool) { return messages.ParseTimestamp(s) }

// FormatTimestamp formats t the way Jumio does (UTC, millisecond precision).
func FormatTimestamp(t time.Time) string { return messages.FormatTimestamp(t) }
