// Package config binds command-line flags to environment variables, 12-factor
// style: a flag given on the command line wins, else its environment
// variable, else the default. Malformed values and missing required settings
// produce errors that name both the flag and the variable.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Setting describes one configuration knob, for help texts and the
// configuration reference.
type Setting struct {
	value    func() int64 // numeric settings: the current value
	Flag     string
	Env      string
	Default  string
	Usage    string
	Secret   bool // never print its value
	Required bool

	// rules are checked after parsing, in order: each returns why the
	// value is unusable, or "". Only the first failing rule is reported.
	rules []func() string
	// str is the current value of a string setting (for the string
	// rules), nil for other kinds.
	str func() string
}

// rule adds a rule to the setting.
func (st *Setting) rule(f func() string) *Setting {
	st.rules = append(st.rules, f)
	return st
}

// Positive makes the setting refuse zero and negative values (integers
// and durations) when the program starts, with an error naming it.
func (st *Setting) Positive() *Setting { return st.rule(st.positive) }

// NonNegative makes the setting refuse negative values (integers and
// durations); zero is allowed (it usually means "off").
func (st *Setting) NonNegative() *Setting {
	return st.rule(func() string {
		if st.number() < 0 {
			return "must not be negative"
		}
		return ""
	})
}

// Between makes an integer setting refuse values outside [lo, hi].
func (st *Setting) Between(lo, hi int64) *Setting {
	return st.rule(func() string {
		if n := st.number(); n < lo || n > hi {
			return fmt.Sprintf("must be between %d and %d, got %d", lo, hi, n)
		}
		return ""
	})
}

// Check adds a rule: f returns why the value is unusable, or "".
func (st *Setting) Check(f func() string) *Setting { return st.rule(f) }

// File makes a string setting naming a file refuse a file that cannot be
// opened for reading (missing, unreadable, a directory). An empty value
// passes: the setting is off.
func (st *Setting) File() *Setting {
	return st.rule(func() string {
		path := st.text()
		if path == "" {
			return ""
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err))
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			return fmt.Sprintf("%s is a directory, not a file", path)
		}
		return ""
	})
}

// URL makes a string setting refuse anything but an absolute URL with one
// of schemes and a host. An empty value passes: the setting is off.
func (st *Setting) URL(schemes ...string) *Setting {
	return st.rule(func() string {
		v := st.text()
		if v == "" {
			return ""
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || !slices.Contains(schemes, strings.ToLower(u.Scheme)) {
			return fmt.Sprintf("want an absolute %s URL with a host, got %q", strings.Join(schemes, " or "), v)
		}
		return ""
	})
}

// HostPort makes a string setting refuse anything but a listen address
// HOST:PORT (HOST may be empty for every interface, PORT 0 for any free
// port).
func (st *Setting) HostPort() *Setting {
	return st.rule(func() string {
		v := st.text()
		_, port, err := net.SplitHostPort(v)
		if err != nil {
			return fmt.Sprintf("want HOST:PORT such as 127.0.0.1:8080, got %q", v)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Sprintf("want a port number from 0 to 65535, got %q", port)
		}
		return ""
	})
}

func (st *Setting) positive() string {
	if st.number() <= 0 {
		return "must be greater than zero"
	}
	return ""
}

// text is the setting's current value as a string ("" for other kinds).
func (st *Setting) text() string {
	if st.str == nil {
		return ""
	}
	return st.str()
}

// number is the setting's current numeric value (integers and durations).
func (st *Setting) number() int64 {
	if st.value == nil {
		return 0
	}
	return st.value()
}

// Set is a group of settings of one program.
type Set struct {
	name     string
	fs       *flag.FlagSet
	getenv   func(string) string
	settings []*Setting
	apply    []func() error // env values, applied before flags are parsed
}

// New returns an empty set for program name. getenv defaults to os.Getenv.
func New(name string, getenv func(string) string) *Set {
	if getenv == nil {
		getenv = os.Getenv
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	s := &Set{name: name, fs: fs, getenv: getenv}
	fs.Usage = func() { s.PrintUsage(fs.Output()) }
	return s
}

// FlagSet exposes the underlying flags (for extra flags without env vars).
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

func (s *Set) add(st *Setting, fromEnv func(string) error) {
	s.settings = append(s.settings, st)
	if st.Env == "" {
		return
	}
	s.apply = append(s.apply, func() error {
		v, ok := lookup(s.getenv, st.Env)
		if !ok {
			return nil
		}
		if err := fromEnv(v); err != nil {
			return fmt.Errorf("%s: %w", st.Env, err)
		}
		return nil
	})
}

func lookup(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

// String binds a string setting.
func (s *Set) String(p *string, name, env, def, usage string) *Setting {
	*p = def
	st := &Setting{Flag: name, Env: env, Default: def, Usage: usage, str: func() string { return *p }}
	s.fs.StringVar(p, name, def, usage)
	s.add(st, func(v string) error { *p = v; return nil })
	return st
}

// Secret binds a string setting whose value is never printed.
func (s *Set) Secret(p *string, name, env, usage string) *Setting {
	st := s.String(p, name, env, "", usage)
	st.Secret = true
	return st
}

// Int binds an integer setting.
func (s *Set) Int(p *int, name, env string, def int, usage string) *Setting {
	*p = def
	st := &Setting{Flag: name, Env: env, Default: strconv.Itoa(def), Usage: usage, value: func() int64 { return int64(*p) }}
	s.fs.IntVar(p, name, def, usage)
	s.add(st, func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("invalid integer %q", v)
		}
		*p = n
		return nil
	})
	return st
}

// Int64 binds a 64-bit integer setting.
func (s *Set) Int64(p *int64, name, env string, def int64, usage string) *Setting {
	*p = def
	st := &Setting{Flag: name, Env: env, Default: strconv.FormatInt(def, 10), Usage: usage, value: func() int64 { return *p }}
	s.fs.Int64Var(p, name, def, usage)
	s.add(st, func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("invalid integer %q", v)
		}
		*p = n
		return nil
	})
	return st
}

// Bool binds a boolean setting.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) *Setting {
	*p = def
	st := &Setting{Flag: name, Env: env, Default: strconv.FormatBool(def), Usage: usage}
	s.fs.BoolVar(p, name, def, usage)
	s.add(st, func(v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("invalid boolean %q (use true or false)", v)
		}
		*p = b
		return nil
	})
	return st
}

// Duration binds a duration setting (Go syntax: 500ms, 30s, 5m).
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string) *Setting {
	*p = def
	st := &Setting{Flag: name, Env: env, Default: def.String(), Usage: usage, value: func() int64 { return int64(*p) }}
	s.fs.DurationVar(p, name, def, usage)
	s.add(st, func(v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("invalid duration %q (use e.g. 500ms, 30s, 5m)", v)
		}
		*p = d
		return nil
	})
	return st
}

// Parse applies environment variables, then the command line.
func (s *Set) Parse(args []string) error {
	var errs []error
	for _, f := range s.apply {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(s.fs.Args(), " "))
	}
	for _, st := range s.settings {
		for _, rule := range st.rules {
			if msg := rule(); msg != "" {
				errs = append(errs, Invalid(st, errors.New(msg)))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// Missing returns an error naming a required setting that has no value.
func Missing(st *Setting) error {
	if st.Env != "" {
		return fmt.Errorf("missing %s (or --%s): %s", st.Env, st.Flag, st.Usage)
	}
	return fmt.Errorf("missing --%s: %s", st.Flag, st.Usage)
}

// Invalid returns an error naming a setting whose value is unusable.
func Invalid(st *Setting, err error) error {
	if st.Env != "" {
		return fmt.Errorf("invalid %s (--%s): %w", st.Env, st.Flag, err)
	}
	return fmt.Errorf("invalid --%s: %w", st.Flag, err)
}

// Settings returns the settings, sorted by flag name.
func (s *Set) Settings() []Setting {
	out := make([]Setting, 0, len(s.settings))
	for _, st := range s.settings {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Flag < out[j].Flag })
	return out
}

// PrintUsage writes a help text listing every setting and its variable.
func (s *Set) PrintUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\nEvery flag can also be set with the environment variable shown.\n\n", s.name)
	for _, st := range s.Settings() {
		env := ""
		if st.Env != "" {
			env = " ($" + st.Env + ")"
		}
		def := ""
		if st.Default != "" && !st.Secret {
			def = " (default " + st.Default + ")"
		}
		fmt.Fprintf(w, "  --%s%s\n      %s%s\n", st.Flag, env, st.Usage, def)
	}
}

// Markdown renders the settings as a table for the configuration reference.
func (s *Set) Markdown() string {
	var b strings.Builder
	b.WriteString("| flag | environment variable | default | meaning |\n| --- | --- | --- | --- |\n")
	for _, st := range s.Settings() {
		env, def := "—", "—"
		if st.Env != "" {
			env = "`" + st.Env + "`"
		}
		if st.Default != "" && !st.Secret {
			def = "`" + st.Default + "`"
		}
		if st.Secret {
			def = "(secret)"
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s | %s |\n", st.Flag, env, def, strings.ReplaceAll(st.Usage, "|", "\\|"))
	}
	return b.String()
}

// SyncDoc checks that the section of the document at path between the
// markers <!-- config:NAME:begin --> and <!-- config:NAME:end --> is table;
// with update it rewrites the section instead.
func SyncDoc(path, name, table string, update bool) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := "<!-- config:"+name+":begin -->\n", "<!-- config:"+name+":end -->"
	i, j := strings.Index(string(doc), begin), strings.Index(string(doc), end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s section markers", path, name)
	}
	current := string(doc[i+len(begin) : j])
	if current == table {
		return nil
	}
	if !update {
		return fmt.Errorf("the %s section of %s does not match the flags; rerun the test with -update-config-doc\n--- document\n%s--- flags\n%s", name, path, current, table)
	}
	out := string(doc[:i+len(begin)]) + table + string(doc[j:])
	return os.WriteFile(path, []byte(out), 0o644)
}

// Numeric reports whether the setting holds an integer or a duration.
func (st Setting) Numeric() bool { return st.value != nil }
