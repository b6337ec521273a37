package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PGBinDir is where Debian's postgresql-15 package puts the server's
// binaries.
const PGBinDir = "/usr/lib/postgresql/15/bin"

// EnsurePostgres makes sure PostgreSQL 15 is installed, installing
// Debian's postgresql-15 package with apt-get when it is missing (which
// needs root).
func EnsurePostgres(logf func(string, ...any)) error {
	if _, err := os.Stat(filepath.Join(PGBinDir, "initdb")); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("bench: PostgreSQL 15 is not installed (" + PGBinDir + "/initdb); run `apt-get install postgresql-15` as root")
	}
	logf("installing postgresql-15 (apt-get)")
	install := func() error {
		cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "postgresql-15")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install postgresql-15: %w\n%s", err, tail(string(out), 2000))
		}
		return nil
	}
	if err := install(); err != nil {
		// The package lists may be missing or stale on a new machine.
		if out, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
			return fmt.Errorf("%w; apt-get update: %v\n%s", err, uerr, tail(string(out), 2000))
		}
		return install()
	}
	return nil
}

// Postgres is a PostgreSQL server the harness started: initdb in a new
// directory, fsync and synchronous commit on, listening on a free loopback
// port, run as the postgres user when the harness is root (PostgreSQL
// refuses to run as root).
type Postgres struct {
	Dir  string // the server's directory (data, socket, log); removed by Stop
	Port int
	cmd  *exec.Cmd
	done chan struct{}
	cred *syscall.Credential
}

// PGSettings are the server settings of the peer run: durable commits
// (fsync, synchronous_commit and full-page writes at their defaults, named
// so that no configuration file can change them), buffers and checkpoint
// spacing sized for a write-heavy queue on this machine, and enough
// connections for the peer's pool plus tools.
var PGSettings = []string{
	"fsync=on", "synchronous_commit=on", "full_page_writes=on",
	"shared_buffers=256MB", "max_connections=100",
	"max_wal_size=4GB", "checkpoint_timeout=30min",
	"log_min_messages=warning", "log_checkpoints=on",
}

// StartPostgres runs initdb in a new directory and starts the server with
// settings (name=value) added to PGSettings.
func StartPostgres(ctx context.Context, settings ...string) (*Postgres, error) {
	dir, err := os.MkdirTemp("", "kycpipe-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Dir: dir, done: make(chan struct{})}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("bench: running as root, PostgreSQL needs the postgres user (from the postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if out, err := p.command(filepath.Join(PGBinDir, "initdb"), "-D", p.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale").CombinedOutput(); err != nil {
		p.remove()
		return nil, fmt.Errorf("bench: initdb: %w\n%s", err, tail(string(out), 2000))
	}
	addr, err := freeAddr()
	if err != nil {
		p.remove()
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	p.Port, _ = strconv.Atoi(port)
	args := []string{"-D", p.data(), "-c", "listen_addresses=127.0.0.1", "-c", "port=" + port, "-c", "unix_socket_directories=" + dir}
	for _, s := range append(append([]string(nil), PGSettings...), settings...) {
		args = append(args, "-c", s)
	}
	logFile, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		p.remove()
		return nil, err
	}
	p.cmd = p.command(filepath.Join(PGBinDir, "postgres"), args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		p.remove()
		return nil, fmt.Errorf("bench: start postgres: %w", err)
	}
	go func() { _ = p.cmd.Wait(); logFile.Close(); close(p.done) }()
	if err := waitFor(ctx, 60*time.Second, func() bool {
		select {
		case <-p.done:
			return true
		default:
		}
		return p.command(filepath.Join(PGBinDir, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", port).Run() == nil
	}); err != nil || !p.running() {
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		p.Stop()
		return nil, fmt.Errorf("bench: postgres did not start: %v\n%s", err, tail(string(log), 2000))
	}
	return p, nil
}

func (p *Postgres) data() string { return filepath.Join(p.Dir, "data") }

func (p *Postgres) command(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = p.Dir
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd
}

func (p *Postgres) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return p.cmd != nil
	}
}

// Pid is the postmaster's process ID.
func (p *Postgres) Pid() int { return p.cmd.Process.Pid }

// URL is the connection URL of database db.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// CreateDB creates database name.
func (p *Postgres) CreateDB(name string) error {
	if out, err := p.command(filepath.Join(PGBinDir, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres", name).CombinedOutput(); err != nil {
		return fmt.Errorf("bench: createdb %s: %w\n%s", name, err, out)
	}
	return nil
}

// Query runs sql in database db with psql and returns the rows, one per
// line, fields separated by '|'.
func (p *Postgres) Query(db, sql string) (string, error) {
	cmd := p.command(filepath.Join(PGBinDir, "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", db, "-c", sql)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("bench: psql: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Version is the server's version line.
func (p *Postgres) Version() string {
	out, err := p.command(filepath.Join(PGBinDir, "postgres"), "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// Stop shuts the server down (fast shutdown: SIGINT) and removes its
// directory.
func (p *Postgres) Stop() {
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.remove()
}

func (p *Postgres) remove() { _ = os.RemoveAll(p.Dir) }

// TreeStat is the CPU time and memory of a process and all its children
// (PostgreSQL's postmaster and its backends and background processes).
type TreeStat struct {
	// CPU is the user + system time of the root, of its live children and
	// of the children it has reaped (cutime + cstime): nothing a child
	// spent is lost when it exits (autovacuum workers, backends).
	CPU time.Duration
	// PSS is the proportional set size summed over the tree: shared memory
	// (shared_buffers) counts once, not once per process.
	PSS int64
	// ByRole is the CPU of the live processes by role (the process title:
	// "backend", "walwriter", "checkpointer", …), and "exited" for reaped
	// children.
	ByRole map[string]time.Duration
	Procs  int
}

// ReadTree reads /proc for the process root and its direct children.
func ReadTree(root int) (TreeStat, error) {
	ts := TreeStat{ByRole: map[string]time.Duration{}}
	f, err := procStatFields(root)
	if err != nil {
		return ts, err
	}
	self := ticks(f[11]) + ticks(f[12])
	reaped := ticks(f[13]) + ticks(f[14])
	ts.CPU = self + reaped
	ts.ByRole["postmaster"] += self
	ts.ByRole["exited"] += reaped
	ts.PSS += readPSS(root)
	ts.Procs = 1
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return ts, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		cf, err := procStatFields(pid)
		if err != nil || cf[1] != strconv.Itoa(root) {
			continue
		}
		cpu := ticks(cf[11]) + ticks(cf[12])
		ts.CPU += cpu
		ts.ByRole[processRole(pid)] += cpu
		ts.PSS += readPSS(pid)
		ts.Procs++
	}
	return ts, nil
}

// procStatFields returns /proc/<pid>/stat's fields after the command name
// (f[0] is field 3, the state; f[1] the parent's pid; f[11..14] utime,
// stime, cutime, cstime).
func procStatFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("bench: unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	return f, nil
}

func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * time.Second / clockTicks
}

// processRole names a PostgreSQL child by its process title: "backend" for
// client connections, else the title ("walwriter", "checkpointer", …).
func processRole(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	title := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	title = strings.TrimPrefix(title, "postgres: ")
	switch {
	case strings.Contains(title, "127.0.0.1(") || strings.Contains(title, "[local]"):
		return "backend"
	case title == "":
		return "other"
	}
	return title
}

func readPSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
