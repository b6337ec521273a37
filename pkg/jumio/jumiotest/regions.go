package jumiotest

import (
	"context"
	"net/http"
	"strings"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// Each Jumio region (amer-1, emea-1, apac-1) is its own deployment with its
// own tenant: its own OAuth2 clients, tokens, accounts and rate limits. The
// simulator serves every region from one address: {URL}/regions/{region}
// is a base URL serving every Jumio service of that region, and the root
// {URL} serves the default region (Options.DefaultRegion) as well.

// regionPrefix starts the paths of a region's services.
const regionPrefix = "/regions/"

type requestRegionKey struct{}

// requestRegion is the region a request reached and the path prefix it
// came through ("" at the root).
type requestRegion struct {
	region jumio.Region
	prefix string
}

// RegionURL returns a base URL serving every Jumio service of region
// (auth, account, credential upload, retrieval, status and the web page):
// {URL}/regions/{region}, without a trailing slash. Point a client for that
// region at it (JUMIO_BASE_URL, jumio.WithBaseURL). Tokens, accounts and
// executions of one region are unknown at another region's URL; the root
// URL serves Options.DefaultRegion. It returns "" for an unknown region.
func (s *Server) RegionURL(region jumio.Region) string {
	if !region.Valid() {
		return ""
	}
	return s.URL + regionPrefix + string(region)
}

// withRegion routes /regions/{region}/… to the Jumio services of that
// region and everything else to the default region.
func (s *Server) withRegion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rr := requestRegion{region: s.opts.DefaultRegion}
		if rest, ok := strings.CutPrefix(r.URL.Path, regionPrefix); ok {
			name, tail, _ := strings.Cut(rest, "/")
			region := jumio.Region(name)
			tail = "/" + tail
			if !region.Valid() || strings.HasPrefix(tail, "/_sim/") {
				writeProblem(w, http.StatusNotFound, "No resource at this path")
				return
			}
			rr = requestRegion{region: region, prefix: regionPrefix + name}
			r2 := new(http.Request)
			*r2 = *r
			u := *r.URL
			u.Path = tail
			if u.RawPath != "" {
				u.RawPath = strings.TrimPrefix(u.RawPath, rr.prefix)
				if !strings.HasPrefix(u.RawPath, "/") {
					u.RawPath = "/" + u.RawPath
				}
			}
			r2.URL = &u
			r = r2
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestRegionKey{}, rr)))
	})
}

// regionOf returns the region request r reached.
func (s *Server) regionOf(r *http.Request) jumio.Region {
	if rr, ok := r.Context().Value(requestRegionKey{}).(requestRegion); ok {
		return rr.region
	}
	return s.opts.DefaultRegion
}

// baseURL is the base URL the client used to reach the server's services
// of r's region: scheme, host and region prefix.
func (s *Server) baseURL(r *http.Request) string {
	base := s.URL
	if r != nil && r.Host != "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	if r != nil {
		if rr, ok := r.Context().Value(requestRegionKey{}).(requestRegion); ok {
			base += rr.prefix
		}
	}
	return base
}

// RegionCredentials returns the first configured OAuth2 client of region's
// tenant, and false if that tenant has none.
func (s *Server) RegionCredentials(region jumio.Region) (jumio.Credentials, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.clientOrder {
		if c := s.clients[id]; c.Region == region {
			return jumio.Credentials{ClientID: c.ID, ClientSecret: c.Secret}, true
		}
	}
	return jumio.Credentials{}, false
}
