package kycctl_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// doctor checks each OAuth permission the pipeline needs (initiate,
// retrieve, delete) with a harmless call, and names the missing one
// (jumio-api.md §10.6); the calls create and delete nothing at Jumio.
func TestDoctorJumioPermissions(t *testing.T) {
	t.Parallel()
	s := startStackWith(t, func(o *localstack.Options) { o.Workers, o.Retrievers = 0, 0 })
	creds := s.Sim.Credentials()
	env := map[string]string{"KYCPIPE_NATS_URL": s.NATSURL, "JUMIO_CLIENT_ID": creds.ClientID,
		"JUMIO_CLIENT_SECRET": creds.ClientSecret, "JUMIO_BASE_URL": s.Sim.URL}
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	before := s.Sim.Stats()
	for _, deny := range []jumio.Permission{"", jumio.PermissionInitiate, jumio.PermissionRetrieve, jumio.PermissionDelete} {
		c := jumiotest.ClientCredentials{ID: creds.ClientID, Secret: creds.ClientSecret,
			DenyInitiate: deny == jumio.PermissionInitiate, DenyRetrieve: deny == jumio.PermissionRetrieve, DenyDelete: deny == jumio.PermissionDelete}
		if err := s.Sim.SetClient(c); err != nil {
			t.Fatal(err)
		}
		r := kycctlRun(t, ctx, env, nil, "doctor", "--json", "--sample", "0")
		d := decodeJSON[doctorJSON](t, result{out: r.out})
		if tok := d.find(t, "jumio"); tok.Status != "OK" {
			t.Errorf("deny %q: token check %+v", deny, tok)
		}
		for _, p := range jumio.Permissions {
			got := d.find(t, "jumio: "+string(p)+" permission")
			switch {
			case p == deny && (got.Status != "FAIL" || !strings.Contains(got.Detail, "missing") || !strings.Contains(got.Detail, "403")):
				t.Errorf("deny %q: %+v", deny, got)
			case p != deny && got.Status != "OK":
				t.Errorf("deny %q: %s: %+v", deny, p, got)
			}
		}
		if (deny == "") != (r.err == nil) {
			t.Errorf("deny %q: exit error %v", deny, r.err)
		}
	}
	after := s.Sim.Stats()
	if after.AccountsCreated != before.AccountsCreated || after.ExecutionsCreated != before.ExecutionsCreated {
		t.Errorf("doctor created accounts (%d → %d) or executions (%d → %d)", before.AccountsCreated, after.AccountsCreated,
			before.ExecutionsCreated, after.ExecutionsCreated)
	}

	// A region with its own client is checked on its own.
	if err := s.Sim.SetClient(jumiotest.ClientCredentials{ID: creds.ClientID, Secret: creds.ClientSecret}); err != nil {
		t.Fatal(err)
	}
	emea, _ := s.Sim.RegionCredentials(jumio.RegionEMEA)
	env["JUMIO_CLIENT_ID_EMEA_1"], env["JUMIO_CLIENT_SECRET_EMEA_1"] = emea.ClientID, "not-the-secret"
	env["JUMIO_BASE_URL_EMEA_1"] = s.Sim.RegionURL(jumio.RegionEMEA)
	r := kycctlRun(t, ctx, env, nil, "doctor", "--json", "--sample", "0")
	d := decodeJSON[doctorJSON](t, result{out: r.out})
	if c := d.find(t, "jumio emea-1"); c.Status != "FAIL" || !strings.Contains(c.Detail, "JUMIO_CLIENT_ID_EMEA_1") {
		t.Errorf("emea-1 with a wrong secret: %+v", c)
	}
	if c := d.find(t, "jumio"); c.Status != "OK" {
		t.Errorf("amer-1: %+v", c)
	}
	lacks(t, r, "not-the-secret", creds.ClientSecret)
}
