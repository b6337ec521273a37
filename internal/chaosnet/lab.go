package chaosnet

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// Lab is a set of Linux network namespaces on one bridge: one host per
// process, each with its own address, all reachable from the root namespace
// (where the harness runs, at .1). Faults are iptables rules in a host's own
// namespace, in a chain (KCFAULT) that INPUT and OUTPUT jump to, so healing
// a host is flushing one chain. It needs root, iproute2 and iptables.
type Lab struct {
	id     string // short, unique per run: every name starts with "kc"+id
	prefix string // the /24, e.g. "10.213.7"
	bridge string

	mu    sync.Mutex
	hosts []*Host
	fwd   bool // the host FORWARD rule for the bridge is in place
}

// Host is one namespace of the lab.
type Host struct {
	Name string // logical name: n1, ingest, w1, …
	NS   string // network namespace
	IP   string
	veth string // the root namespace's end
}

// faultChain is the iptables chain of every host's faults.
const faultChain = "KCFAULT"

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaosnet: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CheckTools reports what is missing to build a lab: root, ip, iptables.
func CheckTools() error {
	var errs []error
	if out, err := exec.Command("id", "-u").Output(); err != nil || strings.TrimSpace(string(out)) != "0" {
		errs = append(errs, errors.New("network namespaces need root"))
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("%s is not installed (Debian: apt-get install iproute2 iptables)", tool))
		}
	}
	return errors.Join(errs...)
}

// NewLab creates the bridge, with the root namespace at prefix.1/24. id
// must be short (names are limited to 15 characters).
func NewLab(ctx context.Context, id, prefix string) (*Lab, error) {
	if len(id) > 6 {
		return nil, fmt.Errorf("chaosnet: lab id %q longer than 6 characters", id)
	}
	l := &Lab{id: id, prefix: prefix, bridge: "kc" + id + "br"}
	if err := run(ctx, "ip", "link", "add", l.bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"ip", "addr", "add", prefix + ".1/24", "dev", l.bridge},
		{"ip", "link", "set", l.bridge, "up"},
	}
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			l.Close()
			return nil, err
		}
	}
	// With br_netfilter, bridged frames go through the root namespace's
	// FORWARD chain, whose policy may be DROP (Docker sets it): let the
	// lab's own traffic through.
	if err := run(ctx, "iptables", "-w", "-I", "FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT"); err != nil {
		l.Close()
		return nil, err
	}
	l.fwd = true
	return l, nil
}

// AddHost creates a namespace with address prefix.last, linked to the
// bridge, with its fault chain in place.
func (l *Lab) AddHost(ctx context.Context, name string, last int) (*Host, error) {
	h := &Host{Name: name, NS: "kc" + l.id + "-" + name, IP: fmt.Sprintf("%s.%d", l.prefix, last), veth: fmt.Sprintf("kc%sv%d", l.id, last)}
	if err := run(ctx, "ip", "netns", "add", h.NS); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	steps := [][]string{
		{"ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"ip", "link", "set", h.veth, "master", l.bridge},
		{"ip", "link", "set", h.veth, "up"},
		{"ip", "-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
		{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
		{"ip", "-n", h.NS, "link", "set", "lo", "up"},
		{"ip", "netns", "exec", h.NS, "iptables", "-w", "-N", faultChain},
		{"ip", "netns", "exec", h.NS, "iptables", "-w", "-A", "INPUT", "-j", faultChain},
		{"ip", "netns", "exec", h.NS, "iptables", "-w", "-A", "OUTPUT", "-j", faultChain},
	}
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Command returns the arguments that run bin with args inside h's
// namespace (ip netns exec execs bin: its process is the command's).
func (h *Host) Command(bin string, args ...string) []string {
	return append([]string{"netns", "exec", h.NS, bin}, args...)
}

// Cut makes h drop every packet to and from each of others (a symmetric
// partition between h and them).
func (h *Host) Cut(ctx context.Context, others ...*Host) error {
	for _, o := range others {
		if err := h.iptables(ctx, "-A", faultChain, "-s", o.IP, "-j", "DROP"); err != nil {
			return err
		}
		if err := h.iptables(ctx, "-A", faultChain, "-d", o.IP, "-j", "DROP"); err != nil {
			return err
		}
	}
	return nil
}

// Deafen makes h drop every packet that comes from each of others, and
// nothing it sends: a one-way partition (h still talks, but no longer
// hears them).
func (h *Host) Deafen(ctx context.Context, others ...*Host) error {
	for _, o := range others {
		if err := h.iptables(ctx, "-A", faultChain, "-s", o.IP, "-j", "DROP"); err != nil {
			return err
		}
	}
	return nil
}

// Heal removes every fault of h.
func (h *Host) Heal(ctx context.Context) error {
	return h.iptables(ctx, "-F", faultChain)
}

func (h *Host) iptables(ctx context.Context, args ...string) error {
	return run(ctx, "ip", append([]string{"netns", "exec", h.NS, "iptables", "-w"}, args...)...)
}

// HealAll removes every fault of every host.
func (l *Lab) HealAll(ctx context.Context) error {
	l.mu.Lock()
	hosts := append([]*Host(nil), l.hosts...)
	l.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, h.Heal(ctx))
	}
	return errors.Join(errs...)
}

// Close removes the namespaces, their links and the bridge. Processes must
// have been stopped first.
func (l *Lab) Close() {
	ctx := context.Background()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		_ = run(ctx, "ip", "link", "del", h.veth)
		_ = run(ctx, "ip", "netns", "del", h.NS)
	}
	l.hosts = nil
	if l.fwd {
		_ = run(ctx, "iptables", "-w", "-D", "FORWARD", "-i", l.bridge, "-o", l.bridge, "-j", "ACCEPT")
		l.fwd = false
	}
	_ = run(ctx, "ip", "link", "del", l.bridge)
}
