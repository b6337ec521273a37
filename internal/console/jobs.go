package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// The jobs page: filters (state, decision, region, age, unchanged for),
// search (job ID, customerInternalReference, userReference, workflow
// execution ID: GET /console/jobs?q=…, a stable link for support tools),
// pages of 50 newest first with the index's cursor. No personal data is
// shown in lists: references appear only on a job's page, masked.

var jobStatuses = []string{pipeline.StatusAccepted, pipeline.StatusAccountCreated, pipeline.StatusLaunched,
	pipeline.StatusFinalized, pipeline.StatusDecided, pipeline.StatusFailed, pipeline.StatusErasing}

type option struct{ Value, Label string }

// Age filters (created within) and stuck filters (unchanged for).
var (
	ageOptions  = []option{{"15m", "last 15 minutes"}, {"1h", "last hour"}, {"24h", "last 24 hours"}, {"168h", "last 7 days"}, {"720h", "last 30 days"}}
	idleOptions = []option{{"15m", "15 minutes"}, {"1h", "1 hour"}, {"6h", "6 hours"}, {"24h", "24 hours"}}
	pageSizes   = []int{25, 50, 100}
)

type jobFilters struct {
	Q, Status, Decision, Region, Age, Idle string
	Limit                                  int
	Before                                 uint64
}

// values returns the filters as query parameters (without the cursor).
func (f jobFilters) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"q": f.Q, "status": f.Status, "decision": f.Decision, "region": f.Region, "age": f.Age, "idle": f.Idle} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.Limit != 50 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	return v
}

type jobsData struct {
	F         jobFilters
	Statuses  []string
	Decisions []string
	Regions   []string
	Ages      []option
	Idles     []option
	Sizes     []int
	Rows      []jobRow
	NextURL   string
	FirstURL  string
	Searched  bool
	Filtered  bool
	Took      time.Duration
	Err       string
}

type jobRow struct {
	ID, Status, Decision, Region, Channel, ErrorCode string
	Created, Changed                                 time.Time
}

// parseJobFilters reads and checks the query; a value it does not know is
// an error naming the parameter.
func parseJobFilters(q url.Values) (jobFilters, string) {
	f := jobFilters{Q: strings.TrimSpace(q.Get("q")), Status: strings.ToUpper(q.Get("status")), Decision: strings.ToUpper(q.Get("decision")),
		Region: q.Get("region"), Age: q.Get("age"), Idle: q.Get("idle"), Limit: 50}
	if len(f.Q) > 256 {
		return f, "The search text is too long (at most 256 characters)."
	}
	if f.Status != "" && !slices.Contains(jobStatuses, f.Status) {
		return f, "Unknown state: use one of " + strings.Join(jobStatuses, ", ") + "."
	}
	if f.Decision != "" && !slices.Contains(messages.DecisionTypes, f.Decision) {
		return f, "Unknown decision: use one of " + strings.Join(messages.DecisionTypes, ", ") + "."
	}
	if f.Region != "" {
		r, ok := messages.CanonicalRegion(f.Region)
		if !ok {
			return f, "Unknown region: use amer-1, emea-1 or apac-1."
		}
		f.Region = r
	}
	if f.Age != "" && !slices.ContainsFunc(ageOptions, func(o option) bool { return o.Value == f.Age }) {
		return f, "Unknown age: use one of 15m, 1h, 24h, 168h, 720h."
	}
	if f.Idle != "" && !slices.ContainsFunc(idleOptions, func(o option) bool { return o.Value == f.Idle }) {
		return f, "Unknown \"unchanged for\": use one of 15m, 1h, 6h, 24h."
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || !slices.Contains(pageSizes, n) {
			return f, "Unknown page size: use 25, 50 or 100."
		}
		f.Limit = n
	}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return f, "Invalid page cursor."
		}
		f.Before = n
	}
	return f, ""
}

// query is the index query of the filters (age and idle relative to now).
func (f jobFilters) query(now time.Time) pipeline.JobQuery {
	// A row shows only what an index entry holds (rowOf; a failed job's
	// error code is read from its record, which Summaries still reads).
	q := pipeline.JobQuery{Status: f.Status, Decision: f.Decision, Region: f.Region, Before: f.Before, Limit: f.Limit, Summaries: true}
	if d, err := time.ParseDuration(f.Age); err == nil {
		q.CreatedAfter = now.Add(-d)
	}
	if d, err := time.ParseDuration(f.Idle); err == nil {
		q.ChangedBefore = now.Add(-d)
	}
	return q
}

// matches applies the filters to a record found by search.
func (f jobFilters) matches(r *pipeline.JobRecord, now time.Time) bool {
	q := f.query(now)
	decision := ""
	if r.Decision != nil {
		decision = r.Decision.Type
	}
	changed := r.UpdatedAt
	if changed.IsZero() {
		changed = r.CreatedAt
	}
	return (q.Status == "" || r.Status == q.Status) && (q.Decision == "" || decision == q.Decision) &&
		(q.Region == "" || r.Region == q.Region) && (q.CreatedAfter.IsZero() || !r.CreatedAt.Before(q.CreatedAfter)) &&
		(q.ChangedBefore.IsZero() || changed.Before(q.ChangedBefore))
}

func rowOf(r *pipeline.JobRecord) jobRow {
	row := jobRow{ID: r.JobID, Status: r.Status, Region: r.Region, Channel: r.Channel, Created: r.CreatedAt, Changed: r.UpdatedAt}
	if row.Changed.IsZero() {
		row.Changed = r.CreatedAt
	}
	if r.Decision != nil {
		row.Decision = r.Decision.Type
	}
	if r.LastError != nil && r.Status == pipeline.StatusFailed {
		row.ErrorCode = r.LastError.Code
	}
	return row
}

func (c *Console) jobs(w http.ResponseWriter, q request) {
	f, bad := parseJobFilters(q.r.URL.Query())
	d := &jobsData{F: f, Statuses: jobStatuses, Decisions: messages.DecisionTypes, Regions: jumioRegions(), Ages: ageOptions, Idles: idleOptions, Sizes: pageSizes}
	if bad != "" {
		d.Err = bad
		c.render(w, q, http.StatusBadRequest, "jobs.html", "Jobs", "jobs", d, nil)
		return
	}
	now := c.now()
	start := time.Now()
	d.Filtered = f.Status != "" || f.Decision != "" || f.Region != "" || f.Age != "" || f.Idle != ""
	if f.Q != "" {
		d.Searched = true
		recs, err := c.idx.Search(q.r.Context(), f.Q)
		if err == nil && messages.ValidJobID(f.Q) && !slices.ContainsFunc(recs, func(r *pipeline.JobRecord) bool { return r.JobID == f.Q }) {
			// A job accepted but not yet picked up by a worker has no
			// record (nor index entries) yet: its pending message stands
			// for it.
			var pending *pipeline.JobRecord
			if pending, err = pipeline.PendingJob(q.r.Context(), c.js, c.subj, f.Q); err == nil {
				recs = append([]*pipeline.JobRecord{pending}, recs...)
			} else if errors.Is(err, pipeline.ErrJobNotFound) {
				err = nil
			}
		}
		if err != nil {
			c.unavailable(w, q.r, "the jobs", err)
			return
		}
		for _, r := range recs {
			if f.matches(r, now) {
				d.Rows = append(d.Rows, rowOf(r))
			}
		}
	} else {
		p, err := c.idx.List(q.r.Context(), f.query(now))
		if err != nil {
			c.unavailable(w, q.r, "the jobs", err)
			return
		}
		for _, r := range p.Jobs {
			d.Rows = append(d.Rows, rowOf(r))
		}
		v := f.values()
		if p.Cursor != 0 {
			v.Set("before", strconv.FormatUint(p.Cursor, 10))
			d.NextURL = "/console/jobs?" + v.Encode()
			v.Del("before")
		}
		if f.Before != 0 {
			d.FirstURL = "/console/jobs?" + v.Encode()
		}
	}
	d.Took = time.Since(start)
	c.render(w, q, http.StatusOK, "jobs.html", "Jobs", "jobs", d, flashOf(q.r))
}

func jumioRegions() []string {
	var out []string
	for _, r := range jumio.Regions {
		out = append(out, string(r))
	}
	return out
}
