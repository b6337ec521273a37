package bench

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Markers around the generated part of the Peers section of
// docs/BENCHMARKS.md (make bench-peers); the text outside them is kept.
const (
	peersBeginMarker = "<!-- BEGIN GENERATED: make bench-peers -->"
	peersEndMarker   = "<!-- END GENERATED: make bench-peers -->"
)

// PeerRow is one line of the peer table: a figure for kycpipe and River,
// and River's figure over kycpipe's.
type PeerRow struct {
	What             string
	Kycpipe, River   string
	Ratio            string
	KycpipeAhead     bool // kycpipe is better on this line
	HigherIsBetter   bool
	kycpipeV, riverV float64
}

func peerRow(what string, k, r float64, format func(float64) string, higherIsBetter bool) PeerRow {
	row := PeerRow{What: what, Kycpipe: format(k), River: format(r), Ratio: ratio(r, k), HigherIsBetter: higherIsBetter, kycpipeV: k, riverV: r}
	row.KycpipeAhead = (higherIsBetter && k > r) || (!higherIsBetter && k < r)
	return row
}

func msText(v float64) string { return fmt.Sprintf("%.2f ms", v) }

func durMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Rows is the comparison: River / kycpipe for each figure.
func (r *PeerResults) Rows() []PeerRow {
	k, v := r.Kycpipe, r.River
	return []PeerRow{
		peerRow("jobs/s, first submission to last decision", k.Rate(), v.Rate(), func(x float64) string { return fmt.Sprintf("%.0f", x) }, true),
		peerRow("CPU per job, the system (kycpipe: ingest + worker + retriever + nats-server; River: peer process + every PostgreSQL process)",
			durMS(k.CPUPerJob()), durMS(v.CPUPerJob()), msText, false),
		peerRow("… of which the durable store (nats-server; PostgreSQL)", durMS(k.CPUPerJob(k.Broker)), durMS(v.CPUPerJob(v.Broker)), msText, false),
		peerRow("… of which the application (kycpipe's three stages; the River peer)", durMS(k.CPUPerJob(k.System[:3]...)), durMS(v.CPUPerJob("riverpeer")), msText, false),
		peerRow("submission-to-decision p50 under that load", durMS(k.Lat.P(0.5)), durMS(v.Lat.P(0.5)), msText, false),
		peerRow("submission-to-decision p99 under that load", durMS(k.Lat.P(0.99)), durMS(v.Lat.P(0.99)), msText, false),
		peerRow(fmt.Sprintf("submission-to-decision p50 at %.0f jobs/s (open loop, both)", r.LowRate), durMS(k.Low.Lat.P(0.5)), durMS(v.Low.Lat.P(0.5)), msText, false),
		peerRow(fmt.Sprintf("submission-to-decision p99 at %.0f jobs/s (open loop, both)", r.LowRate), durMS(k.Low.Lat.P(0.99)), durMS(v.Low.Lat.P(0.99)), msText, false),
		peerRow("peak memory of the system (sum of VmHWM; PostgreSQL: peak total PSS)", float64(k.PeakTotal())/(1<<20), float64(v.PeakTotal())/(1<<20),
			func(x float64) string { return fmt.Sprintf("%.1f MiB", x) }, false),
	}
}

// PeersTable is the comparison as plain text for the terminal.
func (r *PeerResults) PeersTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-100s %14s %14s %10s\n", "", "kycpipe", "River", "River/kyc")
	for _, row := range r.Rows() {
		fmt.Fprintf(&b, "%-100s %14s %14s %10s\n", row.What, row.Kycpipe, row.River, row.Ratio)
	}
	return b.String()
}

// PeersMarkdown renders the generated part of the Peers section.
func (r *PeerResults) PeersMarkdown(command string) string {
	var b strings.Builder
	k, v := r.Kycpipe, r.River
	fmt.Fprintf(&b, "### Run of %s\n\n", r.Started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `%s`  \n", command)
	fmt.Fprintf(&b, "Machine: %s; %s; nats-server %s; %s; River %s. Every process (load generator, simulator, the systems) shares these cores.  \n",
		r.Machine, r.GoVersion, strings.TrimPrefix(r.NATSVersion, "nats-server: "), r.PGVersion, r.RiverVersion)
	fmt.Fprintf(&b, "Jobs: %d API-channel prepared-data jobs (the %d-byte body of `make bench`'s end-to-end run) per system, submitted by 64 connections as fast as the system takes them; "+
		"worker and retriever concurrency %d (River: MaxWorkers %d on each queue; pgx pools of %d connections for River and the workers and %d for the HTTP routes; FetchCooldown %s); a fresh simulator per system at zero latency. "+
		"Then %d jobs at %.0f jobs/s (10%% of kycpipe's rate) open loop to both.  \n",
		k.Jobs, r.BodyBytes, r.Options.Concurrency, r.Options.Concurrency, r.Options.PoolSize, r.Options.IngestPoolSize, r.Options.FetchCooldown, k.Low.Jobs, r.LowRate)
	if r.Tests != "" {
		fmt.Fprintf(&b, "Before the run: %s.  \n", r.Tests)
	}
	b.WriteString("\n| | kycpipe | River | River / kycpipe |\n| --- | --- | --- | --- |\n")
	for _, row := range r.Rows() {
		mark := ""
		if !row.KycpipeAhead {
			mark = " (River ahead)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s%s |\n", row.What, row.Kycpipe, row.River, row.Ratio, mark)
	}
	fmt.Fprintf(&b, "| Jumio requests per job (simulator) | %.2f | %.2f | |\n", k.JumioPerJob(), v.JumioPerJob())
	fmt.Fprintf(&b, "| simulator CPU per job (not counted above) | %s ms | %s ms | |\n", ms(k.CPUPerJob("jumiosim")), ms(v.CPUPerJob("jumiosim")))
	fmt.Fprintf(&b, "| submissions: rate, p99 | %.0f req/s, %s ms | %.0f req/s, %s ms | |\n", k.Submit.Throughput(), ms(k.Submit.Lat.P(0.99)), v.Submit.Throughput(), ms(v.Submit.Lat.P(0.99)))

	b.WriteString("\nCPU per job and peak memory by process:\n\n| system | process | CPU ms per job | peak memory |\n| --- | --- | --- | --- |\n")
	for _, run := range []PeerRun{k, v} {
		names := make([]string, 0, len(run.CPU))
		for n := range run.CPU {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			peak := ""
			if p, ok := run.Peak[n]; ok {
				peak = mib(p) + " MiB"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", run.Name, n, ms(run.CPUPerJob(n)), peak)
		}
	}
	if len(v.PGRoles) > 0 {
		b.WriteString("\nPostgreSQL's CPU per job by process (title), and its work per job:\n\n| PostgreSQL process | CPU ms per job |\n| --- | --- |\n")
		roles := make([]string, 0, len(v.PGRoles))
		for n := range v.PGRoles {
			roles = append(roles, n)
		}
		slices.SortFunc(roles, func(a, c string) int { return int(v.PGRoles[c] - v.PGRoles[a]) })
		for _, n := range roles {
			if v.PGRoles[n] > 0 {
				fmt.Fprintf(&b, "| %s | %s |\n", n, ms(v.PGRoles[n]/time.Duration(max(v.Jobs, 1))))
			}
		}
		b.WriteString("\n| per job | value |\n| --- | --- |\n")
		for _, key := range []string{"commits", "WAL records", "WAL bytes", "WAL writes", "WAL syncs"} {
			fmt.Fprintf(&b, "| %s | %.2f |\n", key, v.PGPerJob[key])
		}
	}
	if a := r.RiverAsync; a != nil {
		fmt.Fprintf(&b, "\nThe same River run with `synchronous_commit=off` (commits acknowledged before their WAL reaches the disk, like JetStream's default, which acknowledges before it syncs): "+
			"%.0f jobs/s (%s kycpipe's), %s ms CPU per job (%s; PostgreSQL %s ms), p50 / p99 at %.0f jobs/s %s / %s ms, %.2f commits and %.2f WAL syncs per job.\n",
			a.Rate(), ratio(a.Rate(), k.Rate()), ms(a.CPUPerJob()), ratio(durMS(a.CPUPerJob()), durMS(k.CPUPerJob())), ms(a.CPUPerJob("postgres")),
			r.LowRate, ms(a.Low.Lat.P(0.5)), ms(a.Low.Lat.P(0.99)), a.PGPerJob["commits"], a.PGPerJob["WAL syncs"])
	}
	if v.TopSQL != "" {
		b.WriteString("\nTop statements by execution time (pg_stat_statements: calls | total ms | % | query):\n\n```\n" + v.TopSQL + "\n```\n")
	}
	return b.String()
}

// WritePeersReport replaces the generated part of the Peers section of
// the Markdown file at path, appending the section when the file has none.
func WritePeersReport(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	block := peersBeginMarker + "\n" + section + peersEndMarker
	i, j := strings.Index(s, peersBeginMarker), strings.Index(s, peersEndMarker)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(peersEndMarker):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n## Peers\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
