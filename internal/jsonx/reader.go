package jsonx

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"
)

// Reader is a JSON reader for decoding fast paths. Its methods return false
// when the input is not something the fast path handles (see the package
// documentation); the caller then gives up and decodes the same bytes with
// encoding/json. After a false, the Reader is not used again.
type Reader struct {
	b     []byte
	i     int
	depth int // objects and arrays open around the position
}

// maxDepth is encoding/json's nesting limit: a document with more objects
// and arrays open at once is an error there ("exceeded max depth"), so the
// Reader gives up on it.
const maxDepth = 10000

// enter opens an object or array: false past maxDepth. Each successful
// Object, Map or Array closes it again (after a false the Reader is not
// used, so the count need not be restored).
func (r *Reader) enter() bool {
	r.depth++
	return r.depth <= maxDepth
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

func (r *Reader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// End reports whether only whitespace is left.
func (r *Reader) End() bool {
	r.ws()
	return r.i == len(r.b)
}

// Null consumes a null if one comes next.
func (r *Reader) Null() bool {
	r.ws()
	if r.i+4 <= len(r.b) && string(r.b[r.i:r.i+4]) == "null" {
		r.i += 4
		return true
	}
	return false
}

// Peek returns the next non-space byte (0 at the end).
func (r *Reader) Peek() byte {
	r.ws()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// Object reads an object, calling member for each key with the reader
// positioned at the value; member must consume the value and return true.
// The key is only valid during the call (it aliases the input). A key
// repeated in the same object makes Object return false (encoding/json
// merges or overwrites, the fast path does not). Keys are compared as raw
// bytes, so a key with an escape never matches a field name: callers give
// up on unknown keys. Like Map and Array, it gives up past encoding/json's
// nesting limit.
func (r *Reader) Object(member func(key []byte) bool) bool {
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != '{' || !r.enter() {
		return false
	}
	r.i++
	var seenArr [16][]byte
	seen := seenArr[:0]
	r.ws()
	if r.i < len(r.b) && r.b[r.i] == '}' {
		r.i++
		r.depth--
		return true
	}
	for {
		r.ws()
		key, ok := r.rawKey()
		if !ok {
			return false
		}
		for _, k := range seen {
			if string(k) == string(key) {
				return false
			}
		}
		seen = append(seen, key)
		r.ws()
		if r.i >= len(r.b) || r.b[r.i] != ':' {
			return false
		}
		r.i++
		if !member(key) {
			return false
		}
		r.ws()
		if r.i >= len(r.b) {
			return false
		}
		switch r.b[r.i] {
		case ',':
			r.i++
		case '}':
			r.i++
			r.depth--
			return true
		default:
			return false
		}
	}
}

// Map reads an object whose keys are data (a map), decoding each key as a
// string; like Object, it gives up on a repeated key.
func (r *Reader) Map(member func(key string) bool) bool {
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != '{' || !r.enter() {
		return false
	}
	r.i++
	seen := map[string]bool{}
	r.ws()
	if r.i < len(r.b) && r.b[r.i] == '}' {
		r.i++
		r.depth--
		return true
	}
	for {
		key, ok := r.String()
		if !ok || seen[key] {
			return false
		}
		seen[key] = true
		r.ws()
		if r.i >= len(r.b) || r.b[r.i] != ':' {
			return false
		}
		r.i++
		if !member(key) {
			return false
		}
		r.ws()
		if r.i >= len(r.b) {
			return false
		}
		switch r.b[r.i] {
		case ',':
			r.i++
			r.ws()
		case '}':
			r.i++
			r.depth--
			return true
		default:
			return false
		}
	}
}

// rawKey reads a key without escapes (a key with one is not a field name).
func (r *Reader) rawKey() ([]byte, bool) {
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return nil, false
	}
	start := r.i + 1
	for j := start; j < len(r.b); j++ {
		c := r.b[j]
		if c == '"' {
			r.i = j + 1
			return r.b[start:j], true
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return nil, false
		}
	}
	return nil, false
}

// Array reads an array, calling elem with the reader positioned at each
// element; elem must consume it and return true.
func (r *Reader) Array(elem func() bool) bool {
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != '[' || !r.enter() {
		return false
	}
	r.i++
	r.ws()
	if r.i < len(r.b) && r.b[r.i] == ']' {
		r.i++
		r.depth--
		return true
	}
	for {
		if !elem() {
			return false
		}
		r.ws()
		if r.i >= len(r.b) {
			return false
		}
		switch r.b[r.i] {
		case ',':
			r.i++
		case ']':
			r.i++
			r.depth--
			return true
		default:
			return false
		}
	}
}

// String reads a string. Simple escapes and \u escapes outside the
// surrogate range are decoded; invalid UTF-8 (which encoding/json
// replaces), surrogates and control characters make it return false.
func (r *Reader) String() (string, bool) { return r.str(nil) }

// Interned is a set of strings a Reader hands out without allocating a
// copy ([Reader.InternedStringOrNull]): the values of an enumeration
// (decision types, labels, categories), which a document repeats. It is
// read-only once made and safe for concurrent use.
type Interned struct{ m map[string]string }

// NewInterned returns the set of ss.
func NewInterned(ss ...string) *Interned {
	in := &Interned{m: make(map[string]string, len(ss))}
	for _, s := range ss {
		in.m[s] = s
	}
	return in
}

// InternedStringOrNull reads a string into *dst as StringOrNull does; a
// string of set written without escapes is set's own, not a new copy.
func (r *Reader) InternedStringOrNull(dst *string, set *Interned) bool {
	if r.Null() {
		return true
	}
	s, ok := r.str(set)
	*dst = s
	return ok
}

// str reads a string (see String), taking it from set when it is there.
func (r *Reader) str(set *Interned) (string, bool) {
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return "", false
	}
	start := r.i + 1
	ascii := true
	for j := start; j < len(r.b); j++ {
		c := r.b[j]
		switch {
		case c == '"':
			seg := r.b[start:j]
			if !ascii && !utf8.Valid(seg) {
				return "", false
			}
			r.i = j + 1
			if set != nil {
				if s, ok := set.m[string(seg)]; ok {
					return s, true
				}
			}
			return string(seg), true
		case c == '\\':
			return r.escaped(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// escaped decodes a string with escapes from start (after the quote).
func (r *Reader) escaped(start int) (string, bool) {
	out := make([]byte, 0, 64)
	seg := start
	for j := start; j < len(r.b); {
		c := r.b[j]
		switch {
		case c == '"':
			out = append(out, r.b[seg:j]...)
			if !utf8.Valid(out) {
				return "", false
			}
			r.i = j + 1
			return string(out), true
		case c < 0x20:
			return "", false
		case c == '\\':
			out = append(out, r.b[seg:j]...)
			if j+1 >= len(r.b) {
				return "", false
			}
			switch e := r.b[j+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if j+6 > len(r.b) {
					return "", false
				}
				v, err := strconv.ParseUint(string(r.b[j+2:j+6]), 16, 32)
				if err != nil || (v >= 0xD800 && v < 0xE000) {
					return "", false
				}
				out = utf8.AppendRune(out, rune(v))
				j += 4
			default:
				return "", false
			}
			j += 2
			seg = j
		default:
			j++
		}
	}
	return "", false
}

// Strings reads an array of strings, or null, into dst as encoding/json
// does: [] is an empty slice, null is nil.
func (r *Reader) Strings(dst *[]string) bool {
	if r.Null() {
		*dst = nil
		return true
	}
	out := []string{}
	ok := r.Array(func() bool {
		s, ok := r.String()
		out = append(out, s)
		return ok
	})
	*dst = out
	return ok
}

// StringOrNull reads a string into *dst; null leaves *dst alone (as
// encoding/json does for a string field).
func (r *Reader) StringOrNull(dst *string) bool {
	if r.Null() {
		return true
	}
	s, ok := r.String()
	*dst = s
	return ok
}

// number returns the next JSON number's text.
func (r *Reader) number() ([]byte, bool) {
	r.ws()
	start := r.i
	j := r.i
	if j < len(r.b) && r.b[j] == '-' {
		j++
	}
	switch {
	case j < len(r.b) && r.b[j] == '0':
		j++
	case j < len(r.b) && r.b[j] >= '1' && r.b[j] <= '9':
		for j < len(r.b) && r.b[j] >= '0' && r.b[j] <= '9' {
			j++
		}
	default:
		return nil, false
	}
	if j < len(r.b) && r.b[j] == '.' {
		j++
		d := j
		for j < len(r.b) && r.b[j] >= '0' && r.b[j] <= '9' {
			j++
		}
		if j == d {
			return nil, false
		}
	}
	if j < len(r.b) && (r.b[j] == 'e' || r.b[j] == 'E') {
		j++
		if j < len(r.b) && (r.b[j] == '+' || r.b[j] == '-') {
			j++
		}
		d := j
		for j < len(r.b) && r.b[j] >= '0' && r.b[j] <= '9' {
			j++
		}
		if j == d {
			return nil, false
		}
	}
	r.i = j
	return r.b[start:j], true
}

// Int64 reads an integer into *dst (null leaves it); a number that is not
// an int64 makes it return false.
func (r *Reader) Int64(dst *int64) bool {
	if r.Null() {
		return true
	}
	n, ok := r.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	*dst = v
	return err == nil
}

// Int reads an integer into *dst (null leaves it).
func (r *Reader) Int(dst *int) bool {
	v := int64(*dst)
	if !r.Int64(&v) || int64(int(v)) != v {
		return false
	}
	*dst = int(v)
	return true
}

// Uint64 reads an unsigned integer into *dst (null leaves it).
func (r *Reader) Uint64(dst *uint64) bool {
	if r.Null() {
		return true
	}
	n, ok := r.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseUint(string(n), 10, 64)
	*dst = v
	return err == nil
}

// Float64 reads a number into *dst (null leaves it).
func (r *Reader) Float64(dst *float64) bool {
	if r.Null() {
		return true
	}
	n, ok := r.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseFloat(string(n), 64)
	*dst = v
	return err == nil
}

// Number reads a number and returns its text.
func (r *Reader) Number() (string, bool) {
	n, ok := r.number()
	return string(n), ok
}

// Bool reads true or false into *dst (null leaves it).
func (r *Reader) Bool(dst *bool) bool {
	if r.Null() {
		return true
	}
	switch {
	case r.i+4 <= len(r.b) && string(r.b[r.i:r.i+4]) == "true":
		r.i += 4
		*dst = true
		return true
	case r.i+5 <= len(r.b) && string(r.b[r.i:r.i+5]) == "false":
		r.i += 5
		*dst = false
		return true
	}
	return false
}

// Time reads a time as time.Time.UnmarshalJSON does (null leaves it).
func (r *Reader) Time(dst *time.Time) bool {
	if r.Null() {
		return true
	}
	raw, ok := r.rawString()
	if !ok {
		return false
	}
	return dst.UnmarshalJSON(raw) == nil
}

// rawString returns the next string with its quotes, undecoded.
func (r *Reader) rawString() ([]byte, bool) {
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return nil, false
	}
	for j := r.i + 1; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '"':
			raw := r.b[r.i : j+1]
			r.i = j + 1
			return raw, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// Base64 reads a standard base64 string as encoding/json decodes a []byte
// (null leaves *dst alone; "" is an empty, non-nil slice).
func (r *Reader) Base64(dst *[]byte) bool {
	if r.Null() {
		*dst = nil
		return true
	}
	raw, ok := r.rawString()
	if !ok {
		return false
	}
	s := raw[1 : len(raw)-1]
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		return false
	}
	*dst = b[:n]
	return true
}

// Raw reads any value and returns a copy of its bytes (as json.RawMessage
// keeps them). The value is checked for well-formedness.
func (r *Reader) Raw() ([]byte, bool) {
	r.ws()
	start := r.i
	if !r.Skip() {
		return nil, false
	}
	return append([]byte(nil), r.b[start:r.i]...), true
}

// Skip reads and discards any value.
func (r *Reader) Skip() bool {
	switch r.Peek() {
	case '{':
		return r.Object(func([]byte) bool { return r.Skip() })
	case '[':
		return r.Array(r.Skip)
	case '"':
		_, ok := r.String()
		return ok
	case 't', 'f':
		var b bool
		return r.Bool(&b)
	case 'n':
		return r.Null()
	default:
		_, ok := r.number()
		return ok
	}
}
