package service

import (
	"testing"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// JUMIO_CLIENT_ID_<REGION>, JUMIO_CLIENT_SECRET_<REGION> and
// JUMIO_BASE_URL_<REGION> override the defaults for one region: each
// region's client gets a token from its own tenant.
func TestPerRegionJumioSettings(t *testing.T) {
	t.Parallel()
	sim := jumiotest.NewServer(jumiotest.Options{})
	defer sim.Close()
	emea, _ := sim.RegionCredentials(jumio.RegionEMEA)
	amer := sim.Credentials()
	env := map[string]string{
		// The default pair and URL serve amer-1 (the simulator's root).
		"JUMIO_CLIENT_ID": amer.ClientID, "JUMIO_CLIENT_SECRET": amer.ClientSecret, "JUMIO_BASE_URL": sim.URL,
		"JUMIO_CLIENT_ID_EMEA_1": emea.ClientID, "JUMIO_CLIENT_SECRET_EMEA_1": emea.ClientSecret,
		"JUMIO_BASE_URL_EMEA_1": sim.RegionURL(jumio.RegionEMEA), "JUMIO_USER_AGENT": "ExampleBank-Onboarding/1.0",
	}
	var j Jumio
	set := config.New("test", func(k string) string { return env[k] })
	j.Bind(set)
	if err := set.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := j.Check(jumio.RegionAMER); err != nil {
		t.Fatal(err)
	}
	clients, err := j.Clients(jumio.RegionAMER, zap.NewNop(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := clients.Regions(); len(got) != 2 || got[0] != jumio.RegionAMER || got[1] != jumio.RegionEMEA {
		t.Fatalf("configured regions %v", got)
	}
	for _, r := range []jumio.Region{jumio.RegionAMER, jumio.RegionEMEA} {
		c, err := clients.For(string(r))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AccessToken(t.Context()); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	if got := clients.CredentialSettings(jumio.RegionEMEA); got != "JUMIO_CLIENT_ID_EMEA_1 / JUMIO_CLIENT_SECRET_EMEA_1" {
		t.Errorf("emea-1 credentials named %q", got)
	}
	if st := sim.Stats(); st.RequestsByRegion["emea-1"] != 1 || st.Refusals[jumiotest.RefusalBadClient] != 0 {
		t.Errorf("simulator: requests by region %v, refusals %v", st.RequestsByRegion, st.Refusals)
	}
	// apac-1 has no settings of its own: the default pair, at the default URL
	// (the simulator's root serves amer-1, whose tenant does not know it).
	c, err := clients.For("apac-1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Region() != jumio.RegionAPAC {
		t.Fatalf("region %s", c.Region())
	}
}
