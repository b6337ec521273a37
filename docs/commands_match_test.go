package docs_test

// The matching side of TestDocumentedCommands: does a command's real
// output still say what the document shows?
//
// The document is the expectation, read the way a person reads it:
//   - Every line shown must appear in the real output, in order; lines the
//     document leaves out are allowed (documents trim), and "…" stands for
//     anything (within a line, or whole lines).
//   - Whitespace runs count as one space (tables realign).
//   - What differs on every run is a wildcard of its kind: job IDs, UUIDs
//     and their "1234abcd-…" prefixes, webhook secrets (whsec_…),
//     timestamps, durations and ages, byte sizes ("616 bytes" too), the NATS server version
//     and stream sequences. Job IDs, UUIDs and secrets bind: once job_06h…
//     of the document stood for a real job, it must stand for that job
//     everywhere after, and commands that name it are run with the real
//     value (webhook endpoint IDs, ep_…, too).
//   - A line that is JSON is compared as JSON: every property shown must be
//     there with the value shown (strings by the rules above), arrays have
//     the length shown; properties added since are allowed.
// Everything else (states, decision types, HTTP statuses, error codes,
// counts, messages) must be exactly as shown.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// volatileRE finds, in a document's line, what differs between runs.
var volatileRE = regexp.MustCompile(strings.Join([]string{
	`(?P<secret>\bwhsec_[A-Za-z0-9+/]+=*)`,
	`(?P<job>\b(?:job|idem|ep)_[0-9a-z]{26}\b)`,
	`(?P<uuid>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)`,
	`(?P<uuidprefix>\b[0-9a-f]{8}-…)`,
	`(?P<ts>\b\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?)`,
	`(?P<logts>\b\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\b)`,
	`(?P<size>\b\d+(?:\.\d+)? (?:B|KiB|MiB|GiB|bytes)\b)`,
	`(?P<version>\bversion \d+\.\d+\.\d+\b)`,
	`(?P<seq>\bKYC_[A-Z_]+(?:#| #|:)\d+\b)`,
	`(?P<origseq>\bKyc-Original-Sequence\s+\d+\b)`,
	`(?P<dur>\b\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h|d)(?:\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h))*\b)`,
	`(?P<ellipsis>…)`,
}, "|"))

// actualPattern is what each volatile kind matches in real output.
var actualPattern = map[string]string{
	"secret":     `(whsec_[A-Za-z0-9+/]+=*)`,
	"job":        `((?:job|idem|ep)_[0-9a-z]{26})`,
	"uuid":       `([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})`,
	"uuidprefix": `([0-9a-f]{8})-…`,
	"ts":         `\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d)?`,
	"logts":      `\d{4}/\d\d/\d\d \d\d:\d\d:\d\d`,
	"size":       `\d+(?:\.\d+)? (?:B|KiB|MiB|GiB|bytes)`,
	"version":    `version \d+\.\d+\.\d+`,
	"origseq":    `Kyc-Original-Sequence \d+`,
	"dur":        `\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h|d)(?:\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h))*`,
	"ellipsis":   `.*?`,
}

// bindKind says how a capturing group binds.
type bindKind int

const (
	bindFull   bindKind = iota // a job ID, UUID or webhook secret
	bindPrefix                 // the first 8 hex digits of a UUID
)

type bindSpec struct {
	doc  string
	kind bindKind
}

// linePattern is one expected line, compiled.
type linePattern struct {
	re    *regexp.Regexp
	binds []bindSpec // one per capturing group
}

var wsRE = regexp.MustCompile(`\s+`)

// collapse trims s and turns every whitespace run into one space.
func collapse(s string) string { return wsRE.ReplaceAllString(strings.TrimSpace(s), " ") }

// compileLine turns a document's line into a pattern over a collapsed
// real line.
func compileLine(doc string) *linePattern {
	doc = collapse(doc)
	names := volatileRE.SubexpNames()
	var b strings.Builder
	p := &linePattern{}
	last := 0
	literal := func(s string) { b.WriteString(regexp.QuoteMeta(s)) }
	for _, m := range volatileRE.FindAllStringSubmatchIndex(doc, -1) {
		kind := ""
		for i := 1; i < len(names); i++ {
			if m[2*i] >= 0 {
				kind = names[i]
				break
			}
		}
		lit := doc[last:m[0]]
		tok := doc[m[0]:m[1]]
		if kind == "ellipsis" {
			lit = strings.TrimRight(lit, " ")
		}
		literal(lit)
		switch kind {
		case "job", "uuid", "secret":
			p.binds = append(p.binds, bindSpec{doc: tok, kind: bindFull})
			b.WriteString(actualPattern[kind])
		case "uuidprefix":
			p.binds = append(p.binds, bindSpec{doc: strings.TrimSuffix(tok, "-…"), kind: bindPrefix})
			b.WriteString(actualPattern[kind])
		case "seq":
			i := strings.LastIndexAny(tok, "#:")
			literal(tok[:i+1])
			b.WriteString(`\d+`)
		default:
			b.WriteString(actualPattern[kind])
		}
		last = m[1]
		if kind == "ellipsis" {
			for last < len(doc) && doc[last] == ' ' {
				last++
			}
		}
	}
	literal(doc[last:])
	p.re = regexp.MustCompile("^" + b.String() + "$")
	return p
}

// binder remembers which real value each document ID stood for.
type binder struct {
	docToAct, actToDoc map[string]string
}

func newBinder() *binder {
	return &binder{docToAct: map[string]string{}, actToDoc: map[string]string{}}
}

// tx is a set of tentative bindings, committed once a whole expected
// output matched.
type tx map[string]string

func (b *binder) lookup(t tx, doc string) (string, bool) {
	if v, ok := t[doc]; ok {
		return v, true
	}
	v, ok := b.docToAct[doc]
	return v, ok
}

// bind checks (and records in t) that doc stands for act.
func (b *binder) bind(t tx, spec bindSpec, act string) bool {
	doc := spec.doc
	if spec.kind == bindPrefix {
		// The prefix of a bound UUID must be the prefix of its real one.
		for d, a := range b.docToAct {
			if strings.HasPrefix(d, doc+"-") {
				return strings.HasPrefix(a, act+"-")
			}
		}
		for d, a := range t {
			if strings.HasPrefix(d, doc+"-") {
				return strings.HasPrefix(a, act+"-")
			}
		}
		doc, act = "prefix:"+doc, "prefix:"+act
	}
	if v, ok := b.lookup(t, doc); ok {
		return v == act
	}
	if d, ok := b.actToDoc[act]; ok && d != doc {
		return false // one real ID for two of the document's
	}
	for d, a := range t {
		if a == act && d != doc {
			return false
		}
	}
	t[doc] = act
	return true
}

func (b *binder) commit(t tx) {
	for d, a := range t {
		b.docToAct[d] = a
		b.actToDoc[a] = d
	}
}

// matchLine reports whether the real line act matches the document's line
// doc, recording bindings in t.
func (b *binder) matchLine(t tx, doc, act string) bool {
	if dv, ok := jsonValue(doc); ok {
		av, ok := jsonValue(act)
		return ok && b.matchJSON(t, dv, av)
	}
	p := compileLine(doc)
	m := p.re.FindStringSubmatch(collapse(act))
	if m == nil {
		return false
	}
	trial := tx{}
	for k, v := range t {
		trial[k] = v
	}
	for i, spec := range p.binds {
		if !b.bind(trial, spec, m[i+1]) {
			return false
		}
	}
	for k, v := range trial {
		t[k] = v
	}
	return true
}

func jsonValue(s string) (any, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") && !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, false
	}
	return v, true
}

// matchJSON compares a document's JSON value with a real one.
func (b *binder) matchJSON(t tx, doc, act any) bool {
	switch d := doc.(type) {
	case map[string]any:
		a, ok := act.(map[string]any)
		if !ok {
			return false
		}
		for k, dv := range d {
			av, ok := a[k]
			if !ok || !b.matchJSON(t, dv, av) {
				return false
			}
		}
		return true
	case []any:
		a, ok := act.([]any)
		if !ok || len(a) != len(d) {
			return false
		}
		for i := range d {
			if !b.matchJSON(t, d[i], a[i]) {
				return false
			}
		}
		return true
	case string:
		a, ok := act.(string)
		return ok && !strings.ContainsAny(a, "\n") && b.matchLine(t, d, a)
	default:
		return fmt.Sprint(doc) == fmt.Sprint(act)
	}
}

// matchOutput checks that the document's expected lines appear, in order,
// in the real output, and commits the bindings they make. It returns the
// first expected line not found.
func (b *binder) matchOutput(expected []string, actual string) (missing string, ok bool) {
	t := tx{}
	lines := strings.Split(strings.ReplaceAll(actual, "\r\n", "\n"), "\n")
	pos := 0
	for _, want := range expected {
		if w := strings.TrimSpace(want); w == "" || w == "…" {
			continue
		}
		found := false
		for pos < len(lines) {
			act := lines[pos]
			pos++
			if b.matchLine(t, want, act) {
				found = true
				break
			}
		}
		if !found {
			return want, false
		}
	}
	b.commit(t)
	return "", true
}

// substitute replaces the document's bound IDs in a command with the real
// ones, and reports a document ID that nothing bound yet.
func (b *binder) substitute(cmd string) (string, error) {
	var unbound []string
	out := volatileRE.ReplaceAllStringFunc(cmd, func(tok string) string {
		if !strings.HasPrefix(tok, "job_") && !strings.HasPrefix(tok, "idem_") && !strings.HasPrefix(tok, "ep_") && !strings.HasPrefix(tok, "whsec_") && !uuidRE.MatchString(tok) {
			return tok
		}
		if v, ok := b.docToAct[tok]; ok {
			return v
		}
		unbound = append(unbound, tok)
		return tok
	})
	if len(unbound) > 0 {
		return "", fmt.Errorf("the command names %s, which no output shown before it introduced", strings.Join(unbound, ", "))
	}
	return out, nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
