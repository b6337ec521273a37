package jumio_test

import (
	"errors"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// An APIError says which client permission the refused call needed, and
// whether the token endpoint itself refused the credentials.
func TestAPIErrorPermission(t *testing.T) {
	t.Parallel()
	c, sim := setup(t, jumiotest.Options{})
	id := sim.Credentials().ClientID
	if err := sim.SetClient(jumiotest.ClientCredentials{ID: id, Secret: sim.Credentials().ClientSecret,
		DenyInitiate: true, DenyRetrieve: true, DenyDelete: true}); err != nil {
		t.Fatal(err)
	}
	const unknown = "0c9a7e55-8d4b-4f3e-9a51-2d9e6f0b7c11"
	calls := map[jumio.Permission]func() error{
		jumio.PermissionInitiate: func() error {
			_, err := c.UpdateAccount(t.Context(), unknown, &jumio.AccountRequest{CustomerInternalReference: "probe",
				WorkflowDefinition: jumio.WorkflowDefinition{Key: "10011"}})
			return err
		},
		jumio.PermissionRetrieve: func() error { _, err := c.WorkflowStatus(t.Context(), unknown, unknown); return err },
		jumio.PermissionDelete:   func() error { return c.DeleteAccount(t.Context(), unknown) },
	}
	for perm, call := range calls {
		var apiErr *jumio.APIError
		if err := call(); !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || apiErr.Permission() != perm || apiErr.TokenEndpoint() {
			t.Errorf("%s: %v (permission %q)", perm, err, apiErr.Permission())
		}
	}

	// A wrong secret: the token endpoint refuses, whatever the call.
	bad, err := jumio.New(jumio.Credentials{ClientID: id, ClientSecret: "wrong"}, jumio.WithBaseURL(sim.URL), jumio.WithUserAgent("kycpipe-test/1.0"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.WorkflowStatus(t.Context(), unknown, unknown)
	var apiErr *jumio.APIError
	if !errors.As(err, &apiErr) || !apiErr.TokenEndpoint() || apiErr.StatusCode != 400 || apiErr.Permission() != "" {
		t.Fatalf("wrong secret: %v", err)
	}
}
