package messages

import "strings"

// Jumio's regions in Jumio's spelling.
const (
	RegionAMER = "amer-1" // United States ("US")
	RegionEMEA = "emea-1" // European Union ("EU")
	RegionAPAC = "apac-1" // Singapore ("SG")
)

// CanonicalRegion accepts a region in Jumio's spelling (amer-1, emea-1,
// apac-1) or the short one users know from the portal (US, EU, SG), in any
// case, and returns Jumio's spelling.
func CanonicalRegion(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "amer-1", "us", "amer":
		return RegionAMER, true
	case "emea-1", "eu", "emea":
		return RegionEMEA, true
	case "apac-1", "sg", "sgp", "apac":
		return RegionAPAC, true
	}
	return "", false
}
