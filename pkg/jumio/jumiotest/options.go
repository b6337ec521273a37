package jumiotest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// Defaults applied by [NewServer] to zero [Options] fields.
const (
	DefaultAddr            = "127.0.0.1:0"
	DefaultClientID        = "sim-client"
	DefaultClientSecret    = "sim-secret"
	DefaultTokenTTL        = time.Hour
	DefaultTokenReuseMin   = 10 * time.Minute
	DefaultSweepInterval   = time.Second
	DefaultSessionTimeout  = 15 * time.Minute
	DefaultMaxUploadSize   = 15_000_000 // Jumio: "max. size 15 MB"
	DefaultCallbackTimeout = 5 * time.Second
	// CallbackUserAgent is the User-Agent of callback deliveries.
	CallbackUserAgent = "Jumio-Callback/1.0"
)

// ErrInvalidOptions is wrapped by the errors [StartServer] returns for
// invalid [Options] (and by the panics of [NewServer] and
// [NewUnstartedServer]).
var ErrInvalidOptions = errors.New("jumiotest: invalid options")

// Options configures a [Server]. The zero value is a working simulator: one
// OAuth2 client (sim-client / sim-secret), Jumio's documented lifetimes,
// immediate processing, no rate limits, no faults, outcomes from
// [DeriveOutcome]. Every field documents its zero value.
type Options struct {
	// Addr is the TCP address [Server.Start] listens on. Default
	// "127.0.0.1:0" (a free port on the loopback interface).
	Addr string

	// Clients are the OAuth2 clients the token endpoints accept, each in
	// its region's tenant (ClientCredentials.Region). Client IDs must be
	// unique across regions. Default: one client per region, sim-client /
	// sim-secret in amer-1, sim-client-emea-1 / sim-secret-emea-1 and
	// sim-client-apac-1 / sim-secret-apac-1.
	Clients []ClientCredentials

	// DefaultRegion is the region the root URL serves (every region is
	// also served under [Server.RegionURL]). Default amer-1.
	DefaultRegion jumio.Region

	// TokenTTL is the OAuth2 access token lifetime. Default 1h
	// (expires_in=3600, as Jumio documents).
	TokenTTL time.Duration

	// TokenReuseMin: the token endpoint hands back the client's current
	// token (same string, same exp claim, so with less life left than
	// expires_in says, as Jumio does) while it has at least this much life
	// left. Default 10m. Negative: always mint a new token; a tiny positive
	// value (time.Nanosecond): reuse until expiry.
	TokenReuseMin time.Duration

	// Now is the clock for token expiry, transaction token lifetime,
	// session expiry and every timestamp in responses. Default time.Now.
	// See [Clock] for a settable clock.
	Now func() time.Time

	// SweepInterval is the real-time period of the background sweeper that
	// applies clock-driven transitions (TOKEN_EXPIRED, SESSION_EXPIRED).
	// Default 1s; negative disables it. [Server.Sweep] runs it on demand,
	// and every request touching an execution applies them to it first.
	SweepInterval time.Duration

	// SessionTimeout is how long a started acquisition may stay inactive
	// before SESSION_EXPIRED. Every upload or user action resets it.
	// Default 15m.
	SessionTimeout time.Duration

	// ProcessingDelay is the real time between ACQUIRED (finalize or web
	// completion) and PROCESSED. Default 0: processing completes before
	// the finalize response is written.
	ProcessingDelay time.Duration

	// RetrievableDelay: for this long (real time) after PROCESSED, the
	// status endpoint still says ACQUIRED and details and steps answer 404,
	// while the PROCESSED callback is already sent ("the callback arrives
	// before the details are retrievable"). Default 0.
	RetrievableDelay time.Duration

	// AutoCompleteWeb, when positive, makes a simulated end user complete
	// every WEB/SDK-capable workflow execution this long (real time) after
	// its creation, as [Server.CompleteWeb] does. Default 0: off.
	AutoCompleteWeb time.Duration

	// DefaultCallbackURL is the portal-level callback URL, used when an
	// account request has no callbackUrl. Default none: such executions
	// send no callbacks.
	DefaultCallbackURL string

	// Switches are the initial values of the rules and quirks that can
	// change while the server runs (see [Switches]). The zero value is
	// faithful to Jumio: every rule enforced.
	Switches Switches

	// Callbacks configures callback delivery and its faults.
	Callbacks CallbackOptions

	// RateLimits enables Jumio's per-tenant rate limits. Default nil: off.
	// [DefaultRateLimits] returns Jumio's documented limits.
	RateLimits *RateLimits

	// Decide scripts the outcome of each processed workflow execution.
	// Default [DeriveOutcome]. It is called without the server's lock held,
	// once per execution, and must be safe for concurrent use.
	Decide func(Execution) Outcome

	// Latency adds a delay before a route is handled (or before each
	// callback delivery for RouteCallback). Default none.
	Latency map[Route]time.Duration

	// MaxUploadSize bounds an uploaded image part in bytes; larger images
	// get 400, like the other image rules. Default 15,000,000 (Jumio's
	// "max. size 15 MB"; an older guide said 5 MB).
	MaxUploadSize int64

	// Workflows adds workflow definitions, or replaces built-in ones with
	// the same key. See [DefaultWorkflows] for the built-ins.
	Workflows map[jumio.WorkflowKey]WorkflowSpec

	// Seed seeds the pseudo-random source behind callback drops (DropRate)
	// and synthetic result details, so runs are reproducible. The zero
	// value is a valid seed. IDs and tokens always come from crypto/rand.
	Seed int64

	// RecordCalls turns the call log on from the start (see [Call] and
	// [Server.CallLog]): every Jumio call about a customerInternalReference,
	// with its arrival time. Default off; [Server.SetCallLog] and POST
	// /_sim/call-log switch it at runtime.
	RecordCalls bool

	// MaxExecutions bounds the workflow executions the simulator keeps in
	// memory, for long load tests and demos: beyond it, the background
	// sweeper (and [Server.Sweep]) forgets the executions that ended
	// longest ago (PROCESSED, expired or deleted, their callbacks
	// delivered), as Jumio's retention deletes data: their routes then
	// answer 404 and their accounts go with their last execution. Default
	// 0: keep every execution (tests inspect them).
	MaxExecutions int

	// Logger receives the simulator's logs: lifecycle events at info level,
	// requests at debug level, with IDs only (never tokens, secrets,
	// references or prepared data). Default: no logging.
	Logger *zap.Logger
}

// ClientCredentials is an OAuth2 client of a region's tenant, as created
// in the Jumio portal. Its JSON form is the control API's (/_sim/clients).
//
// The portal grants a client the permissions "to initiate a transaction,
// retrieve & delete transaction details, or both"; the simulator splits
// retrieve from delete so each refusal can be tested. A refused call
// answers 403; permission changes apply to tokens already issued.
type ClientCredentials struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
	// Region is the tenant the client belongs to: its tokens are accepted
	// only at that region's URLs. Default: Options.DefaultRegion.
	Region jumio.Region `json:"region,omitempty"`
	// DenyInitiate: account calls (POST and PUT /api/v1/accounts) answer
	// 403.
	DenyInitiate bool `json:"denyInitiate,omitempty"`
	// DenyRetrieve: retrieval calls (status, details, steps, images) answer
	// 403.
	DenyRetrieve bool `json:"denyRetrieve,omitempty"`
	// DenyDelete: deletion calls (DELETE account or execution) answer 403.
	DenyDelete bool `json:"denyDelete,omitempty"`
}

// CallbackOptions configures callback delivery. Its JSON form (used by the
// control API) writes durations as Go duration strings ("250ms").
type CallbackOptions struct {
	// Delay is waited before each delivery (each duplicate copy included).
	Delay time.Duration
	// DropFirst drops the first N callbacks the server would send (counted
	// from the start, or from [Server.SetCallbackOptions]): they are never
	// delivered and count in Stats.CallbacksDropped.
	DropFirst int
	// DropRate is the probability (0..1) of dropping any callback.
	DropRate float64
	// Duplicates is the number of extra copies of every callback, each
	// delivered after the previous one, after Delay.
	Duplicates int
	// Reorder delivers an execution's callbacks in reverse order: the
	// intermediate ones are held back and sent after the terminal one. It
	// matters only with Intermediate. callbackSentAt keeps the time of the
	// event, so receivers can detect stale callbacks.
	Reorder bool
	// Intermediate also sends ACQUISITION_STARTED and ACQUIRED callbacks.
	// Default off: only PROCESSED, SESSION_EXPIRED and TOKEN_EXPIRED.
	Intermediate bool
	// Retries is the number of re-deliveries after a non-2xx answer or a
	// connection error (after 50ms, 100ms, … up to 1s). Default 0: Jumio's
	// real retry policy is undocumented.
	Retries int
	// Timeout bounds each delivery attempt. Default 5s.
	Timeout time.Duration
	// HTTPClient sends the callbacks. Default: a client of the server's
	// own, closed by [Server.Close].
	HTTPClient *http.Client
}

type callbackOptionsJSON struct {
	Delay        jsonDuration `json:"delay,omitempty"`
	DropFirst    int          `json:"dropFirst,omitempty"`
	DropRate     float64      `json:"dropRate,omitempty"`
	Duplicates   int          `json:"duplicates,omitempty"`
	Reorder      bool         `json:"reorder,omitempty"`
	Intermediate bool         `json:"intermediate,omitempty"`
	Retries      int          `json:"retries,omitempty"`
	Timeout      jsonDuration `json:"timeout,omitempty"`
}

// MarshalJSON encodes the options with durations as Go duration strings.
// HTTPClient is not encoded.
func (o CallbackOptions) MarshalJSON() ([]byte, error) {
	return json.Marshal(callbackOptionsJSON{
		Delay: jsonDuration(o.Delay), DropFirst: o.DropFirst, DropRate: o.DropRate,
		Duplicates: o.Duplicates, Reorder: o.Reorder, Intermediate: o.Intermediate,
		Retries: o.Retries, Timeout: jsonDuration(o.Timeout),
	})
}

// UnmarshalJSON decodes the JSON form written by MarshalJSON.
func (o *CallbackOptions) UnmarshalJSON(b []byte) error {
	var j callbackOptionsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*o = CallbackOptions{
		Delay: time.Duration(j.Delay), DropFirst: j.DropFirst, DropRate: j.DropRate,
		Duplicates: j.Duplicates, Reorder: j.Reorder, Intermediate: j.Intermediate,
		Retries: j.Retries, Timeout: time.Duration(j.Timeout),
	}
	return nil
}

func (o CallbackOptions) withDefaults() CallbackOptions {
	if o.Timeout == 0 {
		o.Timeout = DefaultCallbackTimeout
	}
	return o
}

func (o CallbackOptions) validate() error {
	switch {
	case o.Delay < 0, o.Timeout < 0:
		return errors.New("callback delay and timeout must not be negative")
	case o.DropFirst < 0, o.Duplicates < 0, o.Retries < 0:
		return errors.New("callback dropFirst, duplicates and retries must not be negative")
	case math.IsNaN(o.DropRate) || o.DropRate < 0 || o.DropRate > 1:
		return errors.New("callback dropRate must be between 0 and 1")
	}
	return nil
}

// normalized clamps out-of-range values, for the setters that cannot fail.
func (o CallbackOptions) normalized() CallbackOptions {
	o.Delay, o.Timeout = max(o.Delay, 0), max(o.Timeout, 0)
	o.DropFirst, o.Duplicates, o.Retries = max(o.DropFirst, 0), max(o.Duplicates, 0), max(o.Retries, 0)
	if math.IsNaN(o.DropRate) || o.DropRate < 0 {
		o.DropRate = 0
	}
	o.DropRate = min(o.DropRate, 1)
	return o.withDefaults()
}

// RateLimits are token-bucket limits per tenant (each region's tenant has
// its own buckets), measured in real time.
// A zero rate leaves that class unlimited; a burst below 1 counts as 1.
// Over a limit the server answers 429 with exactly Jumio's documented body
// {"title":"Too Many Requests","status":429,"detail":"Request limit exceeded"}.
type RateLimits struct {
	// AccountPerSecond and AccountBurst limit POST and PUT
	// /api/v1/accounts, for the whole tenant (all clients together).
	AccountPerSecond float64 `json:"accountPerSecond,omitempty"`
	AccountBurst     int     `json:"accountBurst,omitempty"`
	// RetrievalPerSecond and RetrievalBurst limit status, details, steps,
	// image and deletion calls, for the whole tenant.
	RetrievalPerSecond float64 `json:"retrievalPerSecond,omitempty"`
	RetrievalBurst     int     `json:"retrievalBurst,omitempty"`
	// TokenPerSecond and TokenBurst limit the token endpoint, for the whole
	// tenant (all its clients together).
	TokenPerSecond float64 `json:"tokenPerSecond,omitempty"`
	TokenBurst     int     `json:"tokenBurst,omitempty"`
	// RetryAfter adds a Retry-After header (whole seconds until a request
	// would pass) to 429 answers. Jumio documents none; default false.
	RetryAfter bool `json:"retryAfter,omitempty"`
}

// DefaultRateLimits returns Jumio's documented per-tenant limits: accounts
// 1/s with a burst of 5, retrieval 15/s (burst 15), token 10/s (burst 10),
// without Retry-After.
func DefaultRateLimits() *RateLimits {
	return &RateLimits{
		AccountPerSecond: 1, AccountBurst: 5,
		RetrievalPerSecond: 15, RetrievalBurst: 15,
		TokenPerSecond: 10, TokenBurst: 10,
	}
}

func (r *RateLimits) validate() error {
	if r == nil {
		return nil
	}
	for _, v := range []float64{r.AccountPerSecond, r.RetrievalPerSecond, r.TokenPerSecond} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return errors.New("rate limits must be finite and not negative")
		}
	}
	if r.AccountBurst < 0 || r.RetrievalBurst < 0 || r.TokenBurst < 0 {
		return errors.New("rate limit bursts must not be negative")
	}
	return nil
}

// WorkflowSpec defines a workflow: the credentials an account call returns
// and the capabilities its details report.
type WorkflowSpec struct {
	// Name describes the workflow (shown on the web page).
	Name string `json:"name"`
	// Credentials are the credentials to acquire, in order. Every
	// credential of an execution shares one transaction token.
	Credentials []CredentialSpec `json:"credentials"`
	// Capabilities are the capability names reported in the details
	// (usability, extraction, similarity, liveness, dataChecks,
	// imageChecks, watchlistScreening, addressValidation,
	// proofOfResidency, emailVerification, phoneVerification, …). Known
	// names get realistic data; other names get a result without data.
	Capabilities []string `json:"capabilities"`
}

// CredentialSpec is one credential of a [WorkflowSpec].
type CredentialSpec struct {
	// Category is ID, SELFIE, FACEMAP, DOCUMENT or DATA.
	Category string `json:"category"`
	// Channels are the allowed channels (WEB, API, SDK). The api block of
	// the account response is present only when API is allowed.
	Channels []string `json:"channels"`
	// Parts are the part classifiers (FRONT, BACK, FACE, PREPARED_DATA)
	// uploadable over the API; all of them are needed for usability.
	Parts []string `json:"parts,omitempty"`
}

func (c CredentialSpec) allows(ch string) bool { return slices.Contains(c.Channels, ch) }

func (c CredentialSpec) hasPart(classifier string) bool { return slices.Contains(c.Parts, classifier) }

func (w WorkflowSpec) allows(ch string) bool {
	for _, c := range w.Credentials {
		if c.allows(ch) {
			return true
		}
	}
	return false
}

func (w WorkflowSpec) webCapable() bool {
	return w.allows(jumio.ChannelWeb) || w.allows(jumio.ChannelSDK)
}

func (w WorkflowSpec) clone() WorkflowSpec {
	w.Capabilities = slices.Clone(w.Capabilities)
	creds := make([]CredentialSpec, len(w.Credentials))
	for i, c := range w.Credentials {
		c.Channels, c.Parts = slices.Clone(c.Channels), slices.Clone(c.Parts)
		creds[i] = c
	}
	w.Credentials = creds
	return w
}

func (w WorkflowSpec) validate() error {
	if len(w.Credentials) == 0 {
		return errors.New("needs at least one credential")
	}
	for i, c := range w.Credentials {
		switch c.Category {
		case jumio.CategoryID, jumio.CategorySelfie, jumio.CategoryFacemap, jumio.CategoryDocument, jumio.CategoryData:
		default:
			return fmt.Errorf("credential %d: category must be ID, SELFIE, FACEMAP, DOCUMENT or DATA", i)
		}
		if len(c.Channels) == 0 {
			return fmt.Errorf("credential %d: needs at least one channel", i)
		}
		for _, ch := range c.Channels {
			if ch != jumio.ChannelWeb && ch != jumio.ChannelAPI && ch != jumio.ChannelSDK {
				return fmt.Errorf("credential %d: channels must be WEB, API or SDK", i)
			}
		}
		for _, p := range c.Parts {
			if !slices.Contains(uploadClassifiers, p) {
				return fmt.Errorf("credential %d: parts must be FRONT, BACK, FACE or PREPARED_DATA", i)
			}
		}
		if c.allows(jumio.ChannelAPI) && len(c.Parts) == 0 {
			return fmt.Errorf("credential %d: an API credential needs parts", i)
		}
	}
	return nil
}

var uploadClassifiers = []string{jumio.PartFront, jumio.PartBack, jumio.PartFace, jumio.PartPreparedData}

// withDefaults returns a copy of o with defaults applied. Maps and slices
// are copied, so later changes by the caller do not reach the server.
func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.DefaultRegion == "" {
		o.DefaultRegion = jumio.DefaultRegion
	}
	if len(o.Clients) == 0 {
		o.Clients = DefaultClients()
	} else {
		o.Clients = slices.Clone(o.Clients)
	}
	for i := range o.Clients {
		if o.Clients[i].Region == "" {
			o.Clients[i].Region = o.DefaultRegion
		}
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	if o.TokenReuseMin == 0 {
		o.TokenReuseMin = DefaultTokenReuseMin
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.MaxUploadSize == 0 {
		o.MaxUploadSize = DefaultMaxUploadSize
	}
	o.Callbacks = o.Callbacks.withDefaults()
	o.Switches = o.Switches.clone()
	if o.RateLimits != nil {
		rl := *o.RateLimits
		o.RateLimits = &rl
	}
	if o.Decide == nil {
		o.Decide = DeriveOutcome
	}
	o.Latency = maps.Clone(o.Latency)
	wf := DefaultWorkflows()
	for k, v := range o.Workflows {
		wf[k] = v.clone()
	}
	o.Workflows = wf
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// validate checks options that went through withDefaults.
func (o Options) validate() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
	if !o.DefaultRegion.Valid() {
		return fail("DefaultRegion must be amer-1, emea-1 or apac-1")
	}
	if o.MaxExecutions < 0 {
		return fail("MaxExecutions must not be negative")
	}
	seen := map[string]bool{}
	for i, c := range o.Clients {
		if c.ID == "" || c.Secret == "" {
			return fail("client %d: ID and Secret are required", i)
		}
		if seen[c.ID] {
			return fail("client %d: duplicate client ID (IDs are unique across regions)", i)
		}
		if !c.Region.Valid() {
			return fail("client %d: region must be amer-1, emea-1 or apac-1", i)
		}
		seen[c.ID] = true
	}
	switch {
	case o.TokenTTL < time.Second:
		return fail("TokenTTL must be at least 1s")
	case o.SessionTimeout < 0, o.ProcessingDelay < 0,
		o.RetrievableDelay < 0, o.AutoCompleteWeb < 0:
		return fail("durations must not be negative")
	case o.MaxUploadSize < 0:
		return fail("MaxUploadSize must not be negative")
	}
	if o.DefaultCallbackURL != "" {
		if u, err := url.Parse(o.DefaultCallbackURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail("DefaultCallbackURL must be an absolute http(s) URL")
		}
	}
	if err := o.Callbacks.validate(); err != nil {
		return fail("%v", err)
	}
	if err := o.Switches.validate(); err != nil {
		return fail("%v", err)
	}
	if err := o.RateLimits.validate(); err != nil {
		return fail("%v", err)
	}
	for r, d := range o.Latency {
		if !r.Valid() {
			return fail("latency: unknown route %q", r)
		}
		if d < 0 {
			return fail("latency of route %s must not be negative", r)
		}
	}
	for k, w := range o.Workflows {
		if !workflowKeyRE.MatchString(string(k)) {
			return fail("workflow key %q is not a valid key", k)
		}
		if err := w.validate(); err != nil {
			return fail("workflow %s: %v", k, err)
		}
	}
	return nil
}

// DefaultClients returns the default OAuth2 clients: sim-client /
// sim-secret in amer-1, and sim-client-{region} / sim-secret-{region} in
// emea-1 and apac-1.
func DefaultClients() []ClientCredentials {
	out := []ClientCredentials{{ID: DefaultClientID, Secret: DefaultClientSecret, Region: jumio.RegionAMER}}
	for _, r := range []jumio.Region{jumio.RegionEMEA, jumio.RegionAPAC} {
		out = append(out, ClientCredentials{ID: DefaultClientID + "-" + string(r), Secret: DefaultClientSecret + "-" + string(r), Region: r})
	}
	return out
}

// DefaultWorkflows returns the built-in workflow definitions (a fresh copy):
//
//   - 10011 (ID and identity verification) and 10013 (with screening,
//     address validation and proof of residency): ID (WEB, API, SDK; front,
//     back), SELFIE (WEB, API, SDK; face) and FACEMAP (WEB, SDK).
//   - 10163 and 10164: the same plus a DATA credential (API; prepared_data)
//     for supporting data.
//   - 10010 (watchlist screening), 10065 (phone), 10066 (email) and 10148
//     (email and phone risk signals): one DATA credential (API;
//     prepared_data).
func DefaultWorkflows() map[jumio.WorkflowKey]WorkflowSpec {
	all := []string{jumio.ChannelWeb, jumio.ChannelAPI, jumio.ChannelSDK}
	idCreds := func() []CredentialSpec {
		return []CredentialSpec{
			{Category: jumio.CategoryID, Channels: slices.Clone(all), Parts: []string{jumio.PartFront, jumio.PartBack}},
			{Category: jumio.CategorySelfie, Channels: slices.Clone(all), Parts: []string{jumio.PartFace}},
			{Category: jumio.CategoryFacemap, Channels: []string{jumio.ChannelWeb, jumio.ChannelSDK}},
		}
	}
	data := func() CredentialSpec {
		return CredentialSpec{Category: jumio.CategoryData, Channels: []string{jumio.ChannelAPI}, Parts: []string{jumio.PartPreparedData}}
	}
	idCaps := func(extra ...string) []string {
		return append([]string{capUsability, capExtraction, capSimilarity, capLiveness, capDataChecks, capImageChecks}, extra...)
	}
	return map[jumio.WorkflowKey]WorkflowSpec{
		jumio.WorkflowIDIV: {Name: "ID and Identity Verification", Credentials: idCreds(), Capabilities: idCaps()},
		jumio.WorkflowIDIVScreening: {Name: "ID and Identity Verification + Screening + Address Validation + Proof of Residency",
			Credentials: idCreds(), Capabilities: idCaps(capWatchlist, capAddressValidation, capProofOfResidency)},
		jumio.WorkflowIDIVSupporting: {Name: "ID and Identity Verification + Supporting Data",
			Credentials: append(idCreds(), data()), Capabilities: idCaps()},
		jumio.WorkflowIDSelfie: {Name: "ID + Selfie + Supporting Data",
			Credentials: append(idCreds(), data()), Capabilities: idCaps()},
		jumio.WorkflowWatchlistScreening: {Name: "Standalone Watchlist Screening",
			Credentials: []CredentialSpec{data()}, Capabilities: []string{capWatchlist}},
		jumio.WorkflowPhoneVerification: {Name: "Standalone Phone Verification",
			Credentials: []CredentialSpec{data()}, Capabilities: []string{capPhone}},
		jumio.WorkflowEmailVerification: {Name: "Standalone Email Verification",
			Credentials: []CredentialSpec{data()}, Capabilities: []string{capEmail}},
		jumio.WorkflowPreparedData: {Name: "Standalone Risk Signals (email and phone)",
			Credentials: []CredentialSpec{data()}, Capabilities: []string{capEmail, capPhone}},
	}
}

// jsonDuration is a time.Duration written as a Go duration string.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`durations must be Go duration strings such as "250ms" or "2s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New(`durations must be Go duration strings such as "250ms" or "2s"`)
	}
	*d = jsonDuration(v)
	return nil
}

func timeDuration(d jsonDuration) time.Duration { return time.Duration(d) }
