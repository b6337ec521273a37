package jumio

import (
	"fmt"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Region is a Jumio data center. Each region has its own hosts, its own OAuth2
// tokens and its own data: an account created in one region is unknown in the
// others.
type Region string

// The Jumio data centers.
const (
	RegionAMER Region = "amer-1" // United States ("US")
	RegionEMEA Region = "emea-1" // European Union ("EU")
	RegionAPAC Region = "apac-1" // Singapore ("SG")
)

// DefaultRegion is the region used when none is configured.
const DefaultRegion = RegionAMER

// Regions lists every Jumio region in a stable order.
var Regions = []Region{RegionAMER, RegionEMEA, RegionAPAC}

// ParseRegion accepts a region in Jumio's spelling (amer-1, emea-1, apac-1)
// or the short one users know from the portal (US, EU, SG), in any case.
// It returns an error wrapping [ErrInvalidRegion] for anything else.
func ParseRegion(s string) (Region, error) {
	if r, ok := messages.CanonicalRegion(s); ok {
		return Region(r), nil
	}
	return "", fmt.Errorf("%w: %q (want amer-1, emea-1, apac-1 or US, EU, SG)", ErrInvalidRegion, s)
}

// Valid reports whether r is one of the known regions in Jumio's spelling.
func (r Region) Valid() bool {
	return r == RegionAMER || r == RegionEMEA || r == RegionAPAC
}

// String returns the region's Jumio name.
func (r Region) String() string { return string(r) }

// Service is one of Jumio's API services; each has its own host per region.
type Service string

// Jumio services with their own host names.
const (
	ServiceAuth      Service = "auth"      // OAuth2 token endpoint
	ServiceAccount   Service = "account"   // account create/update
	ServiceRetrieval Service = "retrieval" // status, details, steps, deletion
	ServiceAPI       Service = "api"       // credential upload and finalize (URLs come from Jumio's responses)
	ServiceStatus    Service = "status"    // health of the data center
)

// BaseURL returns the production base URL of service s in region r, for
// example https://account.amer-1.jumio.ai. Upload and finalize URLs are never
// built from it: they are always taken from Jumio's account response, whose
// hosts differ (api.{region}.jumio.ai or api.{region}.jumio.link).
func (r Region) BaseURL(s Service) string {
	return "https://" + string(s) + "." + string(r) + ".jumio.ai"
}

// CallbackSourceIPs returns the IP addresses Jumio documents as the sources of
// callbacks for region r (https://documentation.jumio.ai/docs/developer-resources/callback).
// Receivers may use them as an allowlist.
func (r Region) CallbackSourceIPs() []string {
	switch r {
	case RegionAMER:
		return []string{"34.202.241.227", "34.226.103.119", "34.226.254.127", "52.8.136.236", "54.177.61.57", "54.183.15.212"}
	case RegionEMEA:
		return []string{"34.253.41.236", "35.157.27.193", "52.48.0.25", "52.57.194.92", "52.58.113.86", "52.209.180.134"}
	case RegionAPAC:
		return []string{"3.0.109.121", "52.76.184.73", "52.77.102.92", "13.238.100.17", "13.238.203.238", "52.64.132.26"}
	}
	return nil
}
