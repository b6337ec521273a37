package docs_test

// The shell side of TestDocumentedCommands: splitting a documented command
// line into words the way sh would, and running the commands a Go-only
// machine may not have (curl, nats, a shell script) through Go.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// errUnsupportedShell reports shell syntax the test does not interpret: a
// documented command must stay simple enough to be run here.
var errUnsupportedShell = errors.New("shell syntax the docs test does not interpret (keep documented commands to one program with quoted arguments, or teach docs/commands_shell_test.go)")

// shellWords splits line like sh: '…' and "…" quoting, backslash escapes
// and line continuations, $NAME, ${NAME} and ${NAME:-default} (from vars),
// $(cat FILE) and $(dirname "$0") (through subst), and # comments. Pipes,
// lists, redirections, backgrounding and backquotes are refused.
func shellWords(line string, vars func(string) string, subst func([]string) (string, error)) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	rs := []rune(line)
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\\' && i+1 < len(rs) && rs[i+1] == '\n':
			i++ // line continuation
		case c == '\\' && i+1 < len(rs):
			cur.WriteRune(rs[i+1])
			inWord = true
			i++
		case c == ' ' || c == '\t' || c == '\n':
			flush()
		case c == '#' && !inWord:
			return words, nil // a comment to the end of the line
		case c == '\'':
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j == len(rs) {
				return nil, fmt.Errorf("unterminated ' in %q", line)
			}
			cur.WriteString(string(rs[i+1 : j]))
			inWord, i = true, j
		case c == '"':
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				switch {
				case rs[j] == '\\' && j+1 < len(rs) && strings.ContainsRune("\"\\$`\n", rs[j+1]):
					if rs[j+1] != '\n' {
						cur.WriteRune(rs[j+1])
					}
					j++
				case rs[j] == '$':
					n, s, err := expand(rs[j:], vars, subst)
					if err != nil {
						return nil, err
					}
					cur.WriteString(s)
					j += n - 1
				case rs[j] == '`':
					return nil, errUnsupportedShell
				default:
					cur.WriteRune(rs[j])
				}
			}
			if j == len(rs) {
				return nil, fmt.Errorf("unterminated \" in %q", line)
			}
			inWord, i = true, j
		case c == '$':
			n, s, err := expand(rs[i:], vars, subst)
			if err != nil {
				return nil, err
			}
			cur.WriteString(s)
			inWord, i = true, i+n-1
		case strings.ContainsRune("|;&<>`()", c):
			return nil, fmt.Errorf("%w: %q in %q", errUnsupportedShell, c, line)
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	flush()
	return words, nil
}

var varRE = regexp.MustCompile(`^\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|([0-9]))`)

// noSubst refuses command substitution.
func noSubst([]string) (string, error) { return "", errUnsupportedShell }

// expand reads one $… expansion at the start of rs and returns how many
// runes it used and its value.
func expand(rs []rune, vars func(string) string, subst func([]string) (string, error)) (int, string, error) {
	s := string(rs)
	if strings.HasPrefix(s, "$(") {
		depth, inQuote := 0, rune(0)
		for i, c := range rs {
			switch {
			case inQuote != 0:
				if c == inQuote {
					inQuote = 0
				}
			case c == '"' || c == '\'':
				inQuote = c
			case c == '(':
				depth++
			case c == ')':
				depth--
				if depth == 0 {
					inner, err := shellWords(string(rs[2:i]), vars, subst)
					if err != nil {
						return 0, "", err
					}
					out, err := subst(inner)
					return i + 1, out, err
				}
			}
		}
		return 0, "", fmt.Errorf("unterminated $( in %q", s)
	}
	m := varRE.FindStringSubmatch(s)
	if m == nil {
		return 0, "", fmt.Errorf("%w: %q", errUnsupportedShell, s)
	}
	name := m[1] + m[2] + m[4]
	v := vars(name)
	if v == "" {
		v = m[3]
	}
	return len([]rune(m[0])), v, nil
}

// curlRequest is a curl command line, parsed.
type curlRequest struct {
	method  string
	url     string
	header  http.Header
	body    []byte
	form    []curlFormPart // -F, in order
	files   []string       // files it reads (for the examples coverage)
	verbose bool           // -i: print the status line and headers
}

type curlFormPart struct{ name, file, contentType, value string }

// parseCurl reads the curl flags the documents use: -s, -S, -sS, -i, -X,
// -H, -d / --data / --data-binary (with @FILE), -F (NAME=@FILE;type=T or
// NAME=VALUE) and one URL. open resolves a file name.
func parseCurl(args []string, resolve func(string) string) (*curlRequest, error) {
	r := &curlRequest{header: http.Header{}}
	next := func(i *int, flag string) (string, error) {
		*i++
		if *i >= len(args) {
			return "", fmt.Errorf("curl: %s needs a value", flag)
		}
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-s" || a == "-S" || a == "-sS" || a == "-Ss" || a == "--silent" || a == "--show-error":
		case a == "-i" || a == "--include":
			r.verbose = true
		case a == "-X" || a == "--request":
			v, err := next(&i, a)
			if err != nil {
				return nil, err
			}
			r.method = v
		case a == "-H" || a == "--header":
			v, err := next(&i, a)
			if err != nil {
				return nil, err
			}
			k, val, ok := strings.Cut(v, ":")
			if !ok {
				return nil, fmt.Errorf("curl: header %q has no colon", v)
			}
			r.header.Add(strings.TrimSpace(k), strings.TrimSpace(val))
		case a == "-d" || a == "--data" || a == "--data-binary":
			v, err := next(&i, a)
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(v, "@") {
				path := resolve(v[1:])
				b, err := os.ReadFile(path)
				if err != nil {
					return nil, fmt.Errorf("curl: %w", err)
				}
				r.files = append(r.files, path)
				if a != "--data-binary" {
					// curl -d @file strips carriage returns and newlines.
					b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
				}
				v = string(b)
			}
			if r.body != nil {
				r.body = append(r.body, '&')
			}
			r.body = append(r.body, v...)
		case a == "-F" || a == "--form":
			v, err := next(&i, a)
			if err != nil {
				return nil, err
			}
			name, val, ok := strings.Cut(v, "=")
			if !ok {
				return nil, fmt.Errorf("curl: -F %q is not NAME=VALUE", v)
			}
			p := curlFormPart{name: name}
			if strings.HasPrefix(val, "@") {
				file, typ, _ := strings.Cut(val[1:], ";")
				p.file = resolve(file)
				r.files = append(r.files, p.file)
				if t, ok := strings.CutPrefix(typ, "type="); ok {
					p.contentType = t
				} else if typ != "" {
					return nil, fmt.Errorf("curl: -F %q: only ;type= is interpreted", v)
				}
			} else {
				p.value = val
			}
			r.form = append(r.form, p)
		case strings.HasPrefix(a, "-"):
			return nil, fmt.Errorf("curl: the docs test does not interpret %s (teach docs/commands_shell_test.go)", a)
		default:
			if r.url != "" {
				return nil, fmt.Errorf("curl: two URLs: %s and %s", r.url, a)
			}
			r.url = a
		}
	}
	if r.url == "" {
		return nil, errors.New("curl: no URL")
	}
	if !strings.Contains(r.url, "://") {
		r.url = "http://" + r.url
	}
	if r.method == "" {
		r.method = http.MethodGet
		if r.body != nil || r.form != nil {
			r.method = http.MethodPost
		}
	}
	return r, nil
}

// readOnly reports whether the request changes nothing (it may be
// repeated until its answer matches the document).
func (r *curlRequest) readOnly() bool {
	return (r.method == http.MethodGet || r.method == http.MethodHead) && r.body == nil && r.form == nil
}

// curlResult is what curl showed and the answer's status.
type curlResult struct {
	output  string
	status  int
	problem bool // an application/problem+json answer
}

// do sends the request like curl would and returns what curl prints.
func (r *curlRequest) do(ctx context.Context) (*curlResult, error) {
	var body io.Reader
	header := r.header.Clone()
	switch {
	case r.form != nil:
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for _, p := range r.form {
			if p.file == "" {
				if err := mw.WriteField(p.name, p.value); err != nil {
					return nil, err
				}
				continue
			}
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.name, filepath.Base(p.file)))
			h.Set("Content-Type", cmpOr(p.contentType, "application/octet-stream"))
			w, err := mw.CreatePart(h)
			if err != nil {
				return nil, err
			}
			b, err := os.ReadFile(p.file)
			if err != nil {
				return nil, fmt.Errorf("curl: %w", err)
			}
			_, _ = w.Write(b)
		}
		if err := mw.Close(); err != nil {
			return nil, err
		}
		body = &buf
		header.Set("Content-Type", mw.FormDataContentType())
	case r.body != nil:
		body = bytes.NewReader(r.body)
		if header.Get("Content-Type") == "" {
			header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, fmt.Errorf("curl: %w", err)
	}
	req.Header = header
	req.Header.Set("User-Agent", "curl/8.5.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("curl: (7) %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("curl: (56) %w", err)
	}
	var out strings.Builder
	if r.verbose {
		fmt.Fprintf(&out, "HTTP/1.1 %s\n", resp.Status)
		_ = resp.Header.Write(&out)
		out.WriteString("\n")
	}
	out.Write(b)
	return &curlResult{output: out.String(), status: resp.StatusCode,
		problem: strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json")}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// natsPub publishes like `nats pub SUBJECT BODY [-H K:V]…` (a plain NATS
// publish: the job stream stores it).
func natsPub(ctx context.Context, nc *nats.Conn, args []string) error {
	var subject, body string
	var positional int
	msg := &nats.Msg{Header: nats.Header{}}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-H" || a == "--header":
			if i+1 == len(args) {
				return errors.New("nats pub: -H needs K:V")
			}
			i++
			k, v, ok := strings.Cut(args[i], ":")
			if !ok {
				return fmt.Errorf("nats pub: header %q is not K:V", args[i])
			}
			msg.Header.Set(k, v)
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("nats pub: the docs test does not interpret %s", a)
		case positional == 0:
			subject, positional = a, 1
		case positional == 1:
			body, positional = a, 2
		default:
			return fmt.Errorf("nats pub: unexpected argument %q", a)
		}
	}
	if subject == "" {
		return errors.New("nats pub: no subject")
	}
	msg.Subject, msg.Data = subject, []byte(body)
	if err := nc.PublishMsg(msg); err != nil {
		return err
	}
	return nc.FlushWithContext(ctx)
}

// scriptLine is one line of a documented shell script, interpreted.
type scriptLine struct {
	words []string
	raw   string
}

var (
	assignRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
	cdSelfRE = regexp.MustCompile(`^cd "\$\(dirname "\$0"\)"$`)
)

// runScript interprets a shell script of the kind examples/ ships: comments,
// `set -euo pipefail`, `cd "$(dirname "$0")"`, NAME=VALUE assignments with
// ${NAME:-default}, curl and echo. Any other line fails the test: a script
// the test cannot run is a script the documents cannot promise.
func runScript(ctx context.Context, path string, env func(string) string, resolve func(string) string, out io.Writer, onCurl func(*curlRequest, *curlResult)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	vars := map[string]string{"0": path}
	lookup := func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return env(k)
	}
	dir := filepath.Dir(path)
	local := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return resolve(filepath.Join(dir, p))
	}
	var logical strings.Builder
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasSuffix(line, "\\") {
			logical.WriteString(line + "\n")
			continue
		}
		logical.WriteString(line)
		stmt := strings.TrimSpace(logical.String())
		logical.Reset()
		switch {
		case stmt == "" || strings.HasPrefix(stmt, "#"):
			continue
		case stmt == "set -euo pipefail" || stmt == "set -eu" || stmt == "set -e":
			continue
		case cdSelfRE.MatchString(stmt):
			continue // paths are resolved against the script's directory
		}
		if m := assignRE.FindStringSubmatch(stmt); m != nil {
			w, err := shellWords(m[2], lookup, noSubst)
			if err != nil || len(w) > 1 {
				return fmt.Errorf("%s:%d: %q: %v", path, n, stmt, cmpErr(err, errUnsupportedShell))
			}
			vars[m[1]] = strings.Join(w, "")
			continue
		}
		words, err := shellWords(stmt, lookup, noSubst)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		switch words[0] {
		case "echo":
			fmt.Fprintln(out, strings.Join(words[1:], " "))
		case "curl":
			req, err := parseCurl(words[1:], local)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", path, n, err)
			}
			res, err := req.do(ctx)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", path, n, err)
			}
			onCurl(req, res)
			io.WriteString(out, res.output)
		default:
			return fmt.Errorf("%s:%d: %q: %w", path, n, words[0], errUnsupportedShell)
		}
	}
	return sc.Err()
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// pollEvery is how often a read-only command is repeated while its output
// does not match the document yet.
const pollEvery = 200 * time.Millisecond
