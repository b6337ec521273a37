package jsonx

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// safeSet and htmlSafeSet say which ASCII bytes are written as themselves
// in a JSON string (encoding/json's tables of the same names).
var safeSet, htmlSafeSet = func() (s, h [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		if b == '"' || b == '\\' {
			continue
		}
		s[b] = true
		h[b] = b != '<' && b != '>' && b != '&'
	}
	return s, h
}()

// AppendString appends s as a JSON string exactly as encoding/json does
// (invalid UTF-8 becomes \ufffd, U+2028 and U+2029 are escaped, and with
// escapeHTML '<', '>' and '&' too).
func AppendString(dst []byte, s string, escapeHTML bool) []byte {
	set := &safeSet
	if escapeHTML {
		set = &htmlSafeSet
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if set[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendBase64 appends b as encoding/json writes a []byte: a standard
// base64 string.
func AppendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// AppendTime appends t as time.Time.MarshalJSON does (a quoted AppendText,
// RFC 3339 with nanoseconds). It returns false for a time MarshalJSON
// refuses (a year outside 0-9999, a zone offset of 24 hours or more): the
// caller falls back to encoding/json, which reports the error.
func AppendTime(dst []byte, t time.Time) ([]byte, bool) {
	out, err := t.AppendText(append(dst, '"'))
	if err != nil {
		return dst, false
	}
	return append(out, '"'), true
}

// AppendFloat appends a float64 as encoding/json does. It returns false
// for NaN and infinities, which encoding/json refuses.
func AppendFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

// Object writes a JSON object's members in order. Names must be plain
// ASCII needing no escape (struct tags).
type Object struct {
	B          []byte
	EscapeHTML bool
	n          int
}

// Open starts the object on b.
func Open(b []byte, escapeHTML bool) Object {
	return Object{B: append(b, '{'), EscapeHTML: escapeHTML}
}

// Key writes the next member's name and colon.
func (o *Object) Key(name string) {
	if o.n > 0 {
		o.B = append(o.B, ',')
	}
	o.n++
	o.B = append(o.B, '"')
	o.B = append(o.B, name...)
	o.B = append(o.B, '"', ':')
}

// MapKey writes the next member's name, escaped as a string (a map's key),
// and colon.
func (o *Object) MapKey(name string) {
	if o.n > 0 {
		o.B = append(o.B, ',')
	}
	o.n++
	o.B = AppendString(o.B, name, o.EscapeHTML)
	o.B = append(o.B, ':')
}

// Str writes a string member.
func (o *Object) Str(name, v string) {
	o.Key(name)
	o.B = AppendString(o.B, v, o.EscapeHTML)
}

// StrOmit writes a string member unless it is empty (omitempty).
func (o *Object) StrOmit(name, v string) {
	if v != "" {
		o.Str(name, v)
	}
}

// Int writes an integer member.
func (o *Object) Int(name string, v int64) {
	o.Key(name)
	o.B = strconv.AppendInt(o.B, v, 10)
}

// IntOmit writes an integer member unless it is 0.
func (o *Object) IntOmit(name string, v int64) {
	if v != 0 {
		o.Int(name, v)
	}
}

// Uint writes an unsigned integer member.
func (o *Object) Uint(name string, v uint64) {
	o.Key(name)
	o.B = strconv.AppendUint(o.B, v, 10)
}

// UintOmit writes an unsigned integer member unless it is 0.
func (o *Object) UintOmit(name string, v uint64) {
	if v != 0 {
		o.Uint(name, v)
	}
}

// BoolOmit writes a true member (omitempty drops false).
func (o *Object) BoolOmit(name string, v bool) {
	if v {
		o.Key(name)
		o.B = append(o.B, "true"...)
	}
}

// Bool writes a boolean member.
func (o *Object) Bool(name string, v bool) {
	o.Key(name)
	o.B = strconv.AppendBool(o.B, v)
}

// Time writes a time member; false as AppendTime.
func (o *Object) Time(name string, t time.Time) bool {
	o.Key(name)
	var ok bool
	o.B, ok = AppendTime(o.B, t)
	return ok
}

// TimeOmitZero writes a time member unless it is the zero time
// (omitzero); false as AppendTime.
func (o *Object) TimeOmitZero(name string, t time.Time) bool {
	if t.IsZero() {
		return true
	}
	return o.Time(name, t)
}

// Strings writes a []string member (null for a nil slice, as encoding/json).
func (o *Object) Strings(name string, v []string) {
	o.Key(name)
	o.B = AppendStrings(o.B, v, o.EscapeHTML)
}

// StringsOmit writes a []string member unless it is empty.
func (o *Object) StringsOmit(name string, v []string) {
	if len(v) > 0 {
		o.Strings(name, v)
	}
}

// Close ends the object and returns the buffer.
func (o *Object) Close() []byte {
	o.B = append(o.B, '}')
	return o.B
}

// AppendStrings appends a []string as encoding/json does.
func AppendStrings(dst []byte, v []string, escapeHTML bool) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, s, escapeHTML)
	}
	return append(dst, ']')
}

// Float writes a float64 member; false as AppendFloat (NaN, infinities).
func (o *Object) Float(name string, f float64) bool {
	o.Key(name)
	var ok bool
	o.B, ok = AppendFloat(o.B, f)
	return ok
}

// StringMapOmit writes a map[string]string member unless it is empty
// (omitempty: nil or no entries).
func (o *Object) StringMapOmit(name string, m map[string]string) {
	if len(m) > 0 {
		o.Key(name)
		o.B = AppendStringMap(o.B, m, o.EscapeHTML)
	}
}

// AppendStringMap appends a map[string]string as encoding/json does: null
// for a nil map, else an object with its keys sorted (byte order of the
// keys, before escaping).
func AppendStringMap(dst []byte, m map[string]string, escapeHTML bool) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	var buf [8]string
	dst = append(dst, '{')
	for i, k := range SortedKeys(buf[:0], m) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, k, escapeHTML)
		dst = append(dst, ':')
		dst = AppendString(dst, m[k], escapeHTML)
	}
	return append(dst, '}')
}

// SortedKeys appends m's keys to buf, sorted as encoding/json orders a
// map's members, and returns the result. A caller passes a small array's
// slice as buf to sort a small map's keys without allocating.
func SortedKeys[V any](buf []string, m map[string]V) []string {
	for k := range m {
		buf = append(buf, k)
	}
	slices.Sort(buf)
	return buf
}
