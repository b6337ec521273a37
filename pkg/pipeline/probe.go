package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// FaultKind says what part of kycpipe's configuration Jumio refuses.
type FaultKind string

// Kinds of configuration faults.
const (
	// FaultCredentials: the token endpoint refused the client credentials
	// (400/401/403: a wrong ID or secret, another region's client, a
	// User-Agent Jumio blocks), or Jumio's hosts refused a fresh token
	// (401: a token of another region's tenant, i.e. a base URL pointing at
	// the wrong region).
	FaultCredentials FaultKind = "credentials"
	// FaultPermission: a fresh token was refused with 403 on a call the
	// client lacks the permission for (initiate, retrieve, delete).
	FaultPermission FaultKind = "permission"
	// FaultWebHref: account responses carry no web.href although the
	// workflow offers the web channel: the portal's domain setting is
	// missing (jumio-api.md §10.4).
	FaultWebHref FaultKind = "web_href"
)

// ConfigFault is Jumio refusing kycpipe's configuration rather than a job:
// no job is failed for it; the stage pauses the region (DESIGN 4,
// "Configuration faults are not job faults") until a probe succeeds.
type ConfigFault struct {
	Region     jumio.Region
	Kind       FaultKind
	Permission jumio.Permission // FaultPermission: the permission missing
	Status     int              // Jumio's HTTP status (0 for FaultWebHref)
	// Fix names the setting an operator must fix.
	Fix string
	Err error // Jumio's answer
}

// Error implements error: what Jumio refused and what to fix. It never
// contains a secret.
func (f *ConfigFault) Error() string {
	what := map[FaultKind]string{
		FaultCredentials: "Jumio refuses the client credentials",
		FaultPermission:  fmt.Sprintf("Jumio refuses the client the %q permission", f.Permission),
		FaultWebHref:     "Jumio returns no web.href for web-channel workflows",
	}[f.Kind]
	s := fmt.Sprintf("configuration fault in %s: %s", f.Region, what)
	if f.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", f.Status)
	}
	return s + ": fix " + f.Fix
}

// Unwrap returns Jumio's answer.
func (f *ConfigFault) Unwrap() error { return f.Err }

// ErrInconclusive is wrapped by the errors of [Clients.Probe] when Jumio
// could not be asked (a timeout, a 5xx, a 429): the probe says nothing
// about the configuration.
var ErrInconclusive = errors.New("pipeline: probe inconclusive")

// permissionFix describes where an operator grants perm.
func permissionFix(perm jumio.Permission) string {
	right := map[jumio.Permission]string{
		jumio.PermissionInitiate: "initiate transactions",
		jumio.PermissionRetrieve: "retrieve transaction details",
		jumio.PermissionDelete:   "delete transaction details",
	}[perm]
	return fmt.Sprintf("the API credential's permissions in the Jumio portal (allow it to %s), or JUMIO_USER_AGENT if Jumio blocks it", right)
}

// credentialFault is the fault of a refused token request (or of a fresh
// token refused with 401) in region r.
func (c *Clients) credentialFault(r jumio.Region, err error) *ConfigFault {
	st := jumio.StatusCode(err)
	fix := c.CredentialSettings(r)
	var apiErr *jumio.APIError
	switch {
	case errors.As(err, &apiErr) && !apiErr.TokenEndpoint():
		fix += " and the region's base URL (JUMIO_BASE_URL_<REGION>): Jumio's hosts do not accept the region's token"
	case st == http.StatusForbidden:
		fix += " (or JUMIO_USER_AGENT: Jumio answers 403 to a User-Agent it blocks)"
	}
	return &ConfigFault{Region: r, Kind: FaultCredentials, Status: st, Fix: fix, Err: err}
}

// ProbePermission checks, with one harmless call, whether client may do what
// perm allows. It returns nil when Jumio lets the call through, else the
// call's error (a 403 means the permission is missing). The calls, each on a
// random ID that names nothing, change nothing at Jumio:
//
//   - initiate: PUT /api/v1/accounts/{random} with a minimal valid body.
//     Jumio checks the client's permission before it looks for the
//     account: 404 (or 400) means permitted, 403 refused. No account or
//     execution can be created: the account does not exist.
//   - retrieve: GET the status of a random execution of a random account:
//     404 means permitted.
//   - delete: DELETE /api/v1/accounts/{random}: 404 means permitted;
//     nothing exists to be deleted.
//
// The order "permission, then existence" is what the simulator does and
// what an API gateway in front of Jumio's services does; Jumio does not
// document it (docs/JUMIO.md).
func ProbePermission(ctx context.Context, client *jumio.Client, perm jumio.Permission) error {
	id := probeID()
	var err error
	switch perm {
	case jumio.PermissionInitiate:
		_, err = client.UpdateAccount(ctx, id, &jumio.AccountRequest{CustomerInternalReference: "kycpipe-permission-probe",
			WorkflowDefinition: jumio.WorkflowDefinition{Key: "10011"}})
		if errors.Is(err, jumio.ErrBadRequest) {
			return nil // past the permission check: the probe's body is what Jumio refused
		}
	case jumio.PermissionRetrieve:
		_, err = client.WorkflowStatus(ctx, id, probeID())
	case jumio.PermissionDelete:
		err = client.DeleteAccount(ctx, id)
	default:
		_, err = client.AccessToken(ctx)
		return err
	}
	if errors.Is(err, jumio.ErrNotFound) {
		return nil
	}
	return err
}

// Probe asks Jumio whether region's configuration works: a token request
// with a fresh client, then (unless perm is "") one harmless call needing
// perm (see [ProbePermission]). It returns nil when Jumio accepts, a
// *ConfigFault when it refuses, or an error wrapping [ErrInconclusive]
// when Jumio could not answer.
func (c *Clients) Probe(ctx context.Context, region jumio.Region, perm jumio.Permission) (*ConfigFault, error) {
	cl, err := c.Fresh(string(region))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInconclusive, err)
	}
	if _, err := cl.AccessToken(ctx); err != nil {
		if tokenRefused(err) {
			return c.credentialFault(region, err), nil
		}
		return nil, fmt.Errorf("%w: %w", ErrInconclusive, err)
	}
	if perm == "" {
		return nil, nil
	}
	err = ProbePermission(ctx, cl, perm)
	switch {
	case err == nil:
		return nil, nil
	case errors.Is(err, jumio.ErrForbidden):
		return &ConfigFault{Region: region, Kind: FaultPermission, Permission: perm, Status: http.StatusForbidden,
			Fix: permissionFix(perm), Err: err}, nil
	case tokenRefused(err), errors.Is(err, jumio.ErrUnauthorized):
		return c.credentialFault(region, err), nil
	}
	return nil, fmt.Errorf("%w: %w", ErrInconclusive, err)
}

// tokenRefused reports whether err is the token endpoint refusing the
// client credentials: 400, 401 or 403 (jumio-api.md §10.13).
func tokenRefused(err error) bool {
	var apiErr *jumio.APIError
	if !errors.As(err, &apiErr) || !apiErr.TokenEndpoint() {
		return false
	}
	switch apiErr.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}
