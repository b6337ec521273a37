package jumio

// Permission is a right of a Jumio OAuth2 client. Jumio's portal lets an API
// credential "initiate a transaction, retrieve & delete transaction
// details, or both" (IDV settings; jumio-api.md §10.6): a client without
// the right gets 403 on those calls.
type Permission string

// The permissions kycpipe needs.
const (
	// PermissionInitiate: account create and update.
	PermissionInitiate Permission = "initiate"
	// PermissionRetrieve: status, details, steps and images.
	PermissionRetrieve Permission = "retrieve"
	// PermissionDelete: deleting accounts and workflow executions.
	PermissionDelete Permission = "delete"
)

// Permissions lists every permission kycpipe needs, in a stable order.
var Permissions = []Permission{PermissionInitiate, PermissionRetrieve, PermissionDelete}

// permissionOf is the permission an operation needs: "" for the token
// endpoint and for credential calls (uploads and finalize use the
// execution's transaction token, not the OAuth client).
func permissionOf(op string) Permission {
	switch op {
	case opCreateAccount, opUpdateAccount:
		return PermissionInitiate
	case opWorkflowStatus, opWorkflowDetails, opWorkflowSteps:
		return PermissionRetrieve
	case opDeleteAccount, opDeleteExecution:
		return PermissionDelete
	}
	return ""
}

// Permission returns the OAuth client permission the failed call needed
// (see [Permission]): "" for the token endpoint and credential calls.
func (e *APIError) Permission() Permission { return permissionOf(e.Op) }

// TokenEndpoint reports whether the error is the token endpoint's answer:
// Jumio refused to issue a token for the client credentials (400 or 403 for
// bad credentials, jumio-api.md §10.13), not a call made with a token.
func (e *APIError) TokenEndpoint() bool { return e.Op == opToken }
